"""The Video tab in a real browser: `lareid serve --video_index_dir` over the generated camera videos indexed with
the web tests' tiny model; a person crop upload lists tracklets with camera, time range and thumbnails."""

import os

import numpy as np
import pytest
from PIL import Image
from web_helpers import TIMEOUT_S, serving


@pytest.fixture(scope="module")
def video_server(web_requirements, gallery, tmp_path_factory):
    from hf_lareid.data import generate_synthetic_video
    from hf_lareid_cli import main

    root = tmp_path_factory.mktemp("video-web")
    videos = generate_synthetic_video(root / "videos", num_people=2, num_cameras=2)
    index_dir = root / "video-index"
    status = main(
        [
            "video",
            "index",
            str(gallery["model_dir"]),
            "--videos",
            str(videos / "cam1.mp4"),
            str(videos / "cam2"),
            "--detections",
            str(videos / "cam1" / "gt" / "gt.txt"),
            str(videos / "cam2" / "gt" / "gt.txt"),
            "--index_dir",
            str(index_dir),
        ]
    )
    assert status == 0
    frame = np.asarray(Image.open(videos / "cam1" / "img1" / "000010.jpg"))
    first_box = (videos / "cam1" / "gt" / "gt.txt").read_text().splitlines()[0].split(",")
    x, y, w, h = (int(float(v)) for v in first_box[2:6])
    Image.fromarray(frame[y : y + h, x : x + w]).save(root / "crop.png")
    environment = dict(os.environ, PYTHONUNBUFFERED="1")
    flags = ("--video_index_dir", str(index_dir))
    with serving(gallery["index_dir"], root / "serve.log", environment, *flags) as (url, _):
        yield {"url": url, "crop": root / "crop.png"}


def test_the_video_tab_lists_tracklets_of_other_cameras_with_times_and_thumbnails(browser, video_server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_S * 1000)
    try:
        page.goto(video_server["url"], wait_until="networkidle")
        page.get_by_role("tab", name="Video").click()
        page.locator("#video-query input[type=file]").set_input_files(str(video_server["crop"]))
        page.locator("#video-query img").wait_for()
        camera = page.locator("#video-camera input")
        camera.fill("1")
        camera.press("Enter")
        page.locator("#video-button").click()
        page.locator("#video-status", has_text="tracklets").wait_for()
        page.locator("#video-hits .caption-label").first.wait_for()
        captions = page.locator("#video-hits .caption-label").all_inner_texts()
        assert captions and all("camera 2" in caption and "00:00:0" in caption for caption in captions)
        assert page.locator("#video-hits .thumbnail-item img").count() == len(captions)
        assert "leaving out camera 1" in page.locator("#video-status").inner_text()
    finally:
        context.close()
