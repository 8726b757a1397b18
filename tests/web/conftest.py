"""A real `lareid serve` for the web tests: a tiny model and a calibrated index built here, the server started as a
subprocess on 127.0.0.1 (a free port), and Debian's Chromium driven by Playwright.

Without Chromium (or playwright / gradio) the tests are skipped, except under CI=true, where they fail: CI
installs them (`.ci/run`).
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

CHROMIUM = os.environ.get("HF_LAREID_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_S = 180  # one generous wait for everything: the first embedding on a loaded CI machine is slow
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def require(what: str, available: bool) -> None:
    """Skips without `what`, but fails under CI, which must have installed it."""
    if available:
        return
    message = f"the web tests need {what} (CI installs it: see .ci/run)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


@pytest.fixture(scope="session")
def web_requirements():
    for module in ("gradio", "gradio_client", "playwright"):
        require(f"the Python package {module} (pip install 'hf-lareid[serve]' playwright)", _importable(module))
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def lareid_command() -> list[str]:
    """The installed `lareid` console script beside this Python, else the module."""
    script = Path(sys.executable).parent / "lareid"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "hf_lareid_cli"]


def wait_until_serving(url: str, process: subprocess.Popen, log: Path) -> None:
    """Polls `url` until it answers; fails with the server's output if the server exits or never answers."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"lareid serve exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"lareid serve did not answer on {url} within {TIMEOUT_S} s:\n{log.read_text(errors='replace')}")


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


@contextlib.contextmanager
def serving(
    index_dir: Path, log: Path, environment: dict[str, str], *flags: str
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`lareid serve --index_dir INDEX_DIR FLAGS` on 127.0.0.1:<free port>, its output in `log`: yields `(url,
    process)` once it answers; stopped (its whole process group) whatever happens."""
    port = free_port()
    command = [*lareid_command(), "serve", "--index_dir", str(index_dir), *flags]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=environment, start_new_session=True
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_serving(url, process, log)
        yield url, process
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL if it has not gone after 20 s."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


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


def save_screenshot(page, tmp_path: Path, name: str) -> Path:
    """A screenshot under the test's tmp folder; also into $HF_LAREID_SCREENSHOT_DIR (e.g. docs/) when set."""
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    target = os.environ.get("HF_LAREID_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)
    return path
