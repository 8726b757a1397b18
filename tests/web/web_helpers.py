"""What the web tests share besides their fixtures: the Chromium to drive, the server's start and stop, screenshots.

Test modules import these from here (`from web_helpers import ...`), never from `conftest`, which another test
folder's `conftest` can shadow when several folders run in one pytest call.
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


def importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


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


def save_screenshot(page, tmp_path: Path, name: str) -> Path:
    """A screenshot under the test's tmp folder; also into $HF_LAREID_SCREENSHOT_DIR (e.g. docs/) when set."""
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    target = os.environ.get("HF_LAREID_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)
    return path
