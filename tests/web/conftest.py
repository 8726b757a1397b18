"""A real `lareid serve` for the web tests: a tiny model and a calibrated index built here, the server started as a
subprocess on 127.0.0.1 (a free port), and Debian's Chromium driven by Playwright.

Without Chromium (or playwright / gradio) the tests are skipped, except under CI=true, where they fail: CI
installs them (`.ci/run`).
"""

import os
from pathlib import Path

import pytest
import torch
from web_helpers import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_S, importable, require, serving


@pytest.fixture(scope="session")
def web_requirements():
    for module in ("gradio", "gradio_client", "playwright"):
        require(f"the Python package {module} (pip install 'hf-lareid[serve]' playwright)", importable(module))
    require(f"Chromium at {CHROMIUM} (apt-get install -y chromium)", Path(CHROMIUM).is_file())


@pytest.fixture(scope="session")
def gallery(tmp_path_factory):
    """An untrained model of the `tiny` setup and a gallery index of generated people, calibrated on the query split."""
    from hf_lareid import LATransformerForReID
    from hf_lareid.data import generate_synthetic_reid
    from hf_lareid.hub.setups import load_setup
    from hf_lareid.retrieval import GalleryIndex
    from hf_lareid_cli import main

    root = tmp_path_factory.mktemp("web")
    torch.manual_seed(0)
    config, image_processor, _ = load_setup("tiny")
    model_dir = root / "model"
    LATransformerForReID(config).eval().save_pretrained(model_dir)
    image_processor.save_pretrained(model_dir)
    data_dir = generate_synthetic_reid(
        root / "people", num_ids=8, num_cameras=2, images_per_camera=2, image_size=tuple(config.image_size)
    )
    index_dir = root / "index"
    status = main(
        [
            "index",
            str(model_dir),
            "--dataset",
            "market1501",
            "--data_dir",
            str(data_dir),
            "--index_dir",
            str(index_dir),
            "--calibrate_on",
            "query",
            "--target_false_match_rate",
            "0.1",
        ]
    )
    assert status == 0
    return {"model_dir": model_dir, "index_dir": index_dir, "index": GalleryIndex.load(index_dir), "root": root}


@pytest.fixture(scope="session")
def server(web_requirements, gallery, tmp_path_factory):
    """`lareid serve` on 127.0.0.1:<free port>; stopped (its whole process group) whatever happens."""
    logs = tmp_path_factory.mktemp("server")
    log, network_log = logs / "serve.log", logs / "network.log"
    environment = dict(os.environ, HF_LAREID_NETWORK_LOG=str(network_log), PYTHONUNBUFFERED="1")
    audit = str(Path(__file__).parent / "network_audit")
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [audit, environment.get("PYTHONPATH")]))
    environment.pop("GRADIO_ANALYTICS_ENABLED", None)  # the app itself must turn analytics off
    environment.pop("CI", None)  # OpenVINO's telemetry stays quiet under CI=true; a user's machine has no CI
    with serving(gallery["index_dir"], log, environment) as (url, process):
        yield {"url": url, "process": process, "log": log, "network_log": network_log, **gallery}


@pytest.fixture(scope="session")
def browser(web_requirements):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, server):
    """A fresh page on the server, recording the URL of every request it makes."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_S * 1000)
    page.requests = []
    page.on("request", lambda request: page.requests.append(request.url))
    page.goto(server["url"], wait_until="networkidle")
    try:
        yield page
    finally:
        context.close()
