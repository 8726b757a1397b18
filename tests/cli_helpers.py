"""Test helpers for the `lareid` command (run in this process, one-line errors) and the fault-injection suite (folder
snapshots, a small tmpfs). tests/ is on sys.path through tests/conftest.py."""

import hashlib
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from hf_lareid_cli import main


def run_cli(*argv, capsys):
    """`lareid ARGV` in this process: (exit status, stdout, stderr)."""
    status = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def run_index(model_dir, data_dir, index_dir, *extra, capsys):
    """`lareid index MODEL --dataset market1501 --data_dir DATA --index_dir INDEX EXTRA...` in this process."""
    flags = ["--dataset", "market1501", "--data_dir", data_dir, "--index_dir", index_dir]
    return run_cli("index", model_dir, *flags, *extra, capsys=capsys)


def assert_one_line_error(status, err, *needles):
    """Exit 1 and exactly one `lareid ...: error:` line, without a traceback, holding every needle."""
    assert status == 1
    lines = [line for line in err.strip().splitlines() if line.startswith("lareid ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def snapshot(folder):
    """{relative path: SHA-256} of every file under `folder` (to assert that nothing changed)."""
    folder = Path(folder)
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@contextmanager
def small_tmpfs(path, size_bytes):
    """A tmpfs of `size_bytes` mounted at `path` (root only); skips the test where mounting is refused."""
    os.makedirs(path, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command here")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={max(4, size_bytes // 1024)}k", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield Path(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
