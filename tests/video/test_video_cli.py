"""`lareid video index` / `lareid video search` on the generated camera videos: a crop from camera 1 finds the same
person's tracklet in camera 2 first, at the right time; resuming, erasure and bad input."""

import json
import shutil

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_cli
from PIL import Image

from hf_lareid.retrieval import GalleryIndex
from hf_lareid.video import Tracklet, read_mot


def index_args(model_dir, video_set, index_dir, *extra):
    """Camera 1 as a video file, camera 2 as a MOT frames folder (its det/det.txt found by itself)."""
    return (
        "video",
        "index",
        model_dir,
        "--videos",
        video_set / "cam1.mp4",
        video_set / "cam2",
        "--detections",
        video_set / "cam1" / "det" / "det.txt",
        video_set / "cam2" / "det" / "det.txt",
        "--index_dir",
        index_dir,
        *extra,
    )


def query_crop(video_set, person, tmp_path):
    """A ground-truth crop of `person` from a middle frame of camera 1, saved as a file."""
    gt = read_mot(video_set / "cam1" / "gt" / "gt.txt")
    rows = np.flatnonzero(gt.track_ids == person)
    row = rows[len(rows) // 2]
    x1, y1, x2, y2 = gt.boxes[row].astype(int)
    frame = np.asarray(Image.open(video_set / "cam1" / "img1" / f"{gt.frames[row]:06d}.jpg"))
    path = tmp_path / f"query_{person}.png"
    Image.fromarray(frame[y1:y2, x1:x2]).save(path)
    return path


@pytest.fixture(scope="module")
def built_index(trained_model_dir, video_set, tmp_path_factory):
    index_dir = tmp_path_factory.mktemp("video-index") / "index"
    from hf_lareid_cli import main

    assert main([str(a) for a in index_args(trained_model_dir, video_set, index_dir)]) == 0
    return index_dir


def test_a_crop_from_one_camera_finds_the_same_person_in_the_other_camera_first(
    built_index, video_set, tmp_path, capsys
):
    seen = json.loads((video_set / "synthetic_video.json").read_text())["seen"]
    index = GalleryIndex.load(built_index)
    assert set(index.camera_ids.tolist()) == {1, 2}
    for person in (1, 2, 3, 4):
        picture = tmp_path / f"sheet_{person}.png"
        status, out, err = run_cli(
            "video",
            "search",
            "--index_dir",
            built_index,
            query_crop(video_set, person, tmp_path),
            "--query_camera",
            "1",
            "--top_k",
            "3",
            "--picture",
            picture,
            capsys=capsys,
        )
        assert status == 0, err
        hits = [line for line in out.splitlines() if line.strip()[:2] in ("1.", "2.", "3.")]
        assert len(hits) == 3 and all("camera 2" in hit for hit in hits)  # the query's camera is left out
        first_frame, last_frame = seen[str(person)]["cam2"]
        assert hits[0].split()[-1] == str(video_set / "cam2")
        start, end = (first_frame - 1) / 8, (last_frame - 1) / 8  # 8 frames/s
        assert f"00:00:{int(start):02d}-00:00:{int(end):02d}" in hits[0], (person, hits[0])
        assert Image.open(picture).size[1] > 100
    hits = GalleryIndex.load(built_index).paths
    tracklet = Tracklet.from_key(hits[0])
    assert tracklet.num_in_video >= 4 and tracklet.fps == 8


def test_a_rerun_skips_complete_videos_and_an_interrupted_one_continues(
    trained_model_dir, video_set, built_index, tmp_path, capsys, monkeypatch
):
    from hf_lareid.tracking import ReIDBackend

    complete = GalleryIndex.load(built_index)
    index_dir = tmp_path / "index"
    calls = []
    original = ReIDBackend.embed_crops

    def interrupted(self, crops):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(len(crops))
        return original(self, crops)

    monkeypatch.setattr(ReIDBackend, "embed_crops", interrupted)
    args = index_args(trained_model_dir, video_set, index_dir, "--batch_size", "1", "--checkpoint_every", "1")
    status, _, err = run_cli(*args, capsys=capsys)
    assert status == 130 and "interrupted" in err
    assert len(GalleryIndex.load(index_dir)) == 2  # what was embedded before Ctrl-C is saved
    monkeypatch.setattr(ReIDBackend, "embed_crops", original)
    status, out, err = run_cli(*args, capsys=capsys)
    assert status == 0, err
    assert "resuming" in out and "2 of" in out
    resumed = GalleryIndex.load(index_dir)
    assert sorted(resumed.paths) == sorted(complete.paths)
    status, out, _ = run_cli(*args, capsys=capsys)
    assert status == 0 and f"indexed 0 new tracklets; {index_dir} holds {len(complete)}" in out


def test_remove_a_video_or_a_camera_and_verify(built_index, video_set, tmp_path, capsys):
    index_dir = tmp_path / "copy"
    shutil.copytree(built_index, index_dir)
    total = len(GalleryIndex.load(index_dir))
    status, out, _ = run_cli("video", "index", "--index_dir", index_dir, "--verify", capsys=capsys)
    assert status == 0 and "verified" in out
    status, out, _ = run_cli(
        "video", "index", "--index_dir", index_dir, "--remove", "--videos", video_set / "cam1.mp4", capsys=capsys
    )
    left = GalleryIndex.load(index_dir)
    assert status == 0 and set(left.camera_ids.tolist()) == {2} and 0 < len(left) < total
    status, out, _ = run_cli("video", "index", "--index_dir", index_dir, "--remove", "--camera_ids", "2", capsys=capsys)
    assert status == 0 and len(GalleryIndex.load(index_dir)) == 0


def bad_video_set(video_set, tmp_path):
    """Copies of camera 2's sequence with one flaw each, and the file or row each error must name."""
    cases = {}
    cases["missing video"] = ([tmp_path / "cam9.mp4", video_set / "cam1" / "det" / "det.txt"], "cam9.mp4")
    unreadable = tmp_path / "cam5.mp4"
    unreadable.write_text("not a video")
    cases["unreadable video"] = ([unreadable, video_set / "cam1" / "det" / "det.txt"], "cam5.mp4")
    truncated = tmp_path / "cam8.mp4"
    data = (video_set / "cam1.mp4").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    cases["truncated video"] = ([truncated, video_set / "cam1" / "det" / "det.txt"], "cam8.mp4")
    corrupt = tmp_path / "cam6"
    shutil.copytree(video_set / "cam2", corrupt)
    for frame in sorted((corrupt / "img1").glob("*.jpg"))[1:]:
        frame.write_bytes(b"\xff\xd8 broken")
    cases["corrupt frame"] = ([corrupt, corrupt / "det" / "det.txt"], "cannot be read")
    fresh = tmp_path / "cam7"  # a video not indexed yet (an indexed one is skipped before its detections are read)
    shutil.copytree(video_set / "cam2", fresh)
    lines = (video_set / "cam2" / "det" / "det.txt").read_text().splitlines()
    for name, line, needle in (
        ("outside", "3,-1,900,20,30,60,0.9,-1,-1,-1", "row 4"),
        ("late frame", "999,-1,20,20,30,60,0.9,-1,-1,-1", "row 4: frame 999"),
        ("malformed", "3,-1,abc", "row 4"),
    ):
        path = tmp_path / f"{name.replace(' ', '_')}.txt"
        path.write_text("\n".join([*lines[:3], line, *lines[3:]]) + "\n")
        cases[name] = ([fresh, path], f"{path} {needle}")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    cases["empty detections"] = ([fresh, empty], "empty.txt: no boxes")
    return cases


def test_bad_input_is_one_line_naming_the_file_and_row_and_nothing_indexed_is_lost(
    trained_model_dir, video_set, built_index, tmp_path, capsys
):
    index_dir = tmp_path / "index"
    shutil.copytree(built_index, index_dir)
    before = sorted(GalleryIndex.load(index_dir).paths)
    for name, ((video, detections), needle) in bad_video_set(video_set, tmp_path).items():
        status, _, err = run_cli(
            "video",
            "index",
            trained_model_dir,
            "--videos",
            video,
            "--detections",
            detections,
            "--cameras",
            "3",
            "--index_dir",
            index_dir,
            capsys=capsys,
        )
        assert_one_line_error(status, err, needle)
        assert sorted(GalleryIndex.load(index_dir).paths) == before, name


def test_search_refuses_an_image_index(tmp_path, capsys):
    index = GalleryIndex(8, dataset="market1501")
    index.add(np.eye(8, dtype=np.float32)[:2], paths=["a.jpg", "b.jpg"])
    index.save(tmp_path / "images")
    Image.new("RGB", (32, 64)).save(tmp_path / "q.png")
    status, _, err = run_cli("video", "search", "--index_dir", tmp_path / "images", tmp_path / "q.png", capsys=capsys)
    assert_one_line_error(status, err, "not of video tracklets")


def test_the_qdrant_backend_holds_and_finds_tracklets_too(trained_model_dir, video_set, tmp_path, capsys):
    pytest.importorskip("qdrant_client")
    index_dir = tmp_path / "qdrant-index"
    status, out, err = run_cli(
        *index_args(trained_model_dir, video_set, index_dir, "--backend", "qdrant"), capsys=capsys
    )
    assert status == 0, err
    assert sorted(p.name for p in index_dir.iterdir()) == ["gallery_config.json", "qdrant_storage"]
    status, out, err = run_cli(
        "video",
        "search",
        "--index_dir",
        index_dir,
        query_crop(video_set, 2, tmp_path),
        "--query_camera",
        "1",
        capsys=capsys,
    )
    assert status == 0, err
    seen = json.loads((video_set / "synthetic_video.json").read_text())["seen"]["2"]["cam2"]
    first = next(line for line in out.splitlines() if line.strip().startswith("1."))
    assert "camera 2" in first and f"00:00:{int((seen[0] - 1) / 8):02d}" in first
    status, out, _ = run_cli(*index_args(trained_model_dir, video_set, index_dir, "--backend", "qdrant"), capsys=capsys)
    assert status == 0 and "indexed 0 new tracklets" in out
