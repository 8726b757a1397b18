"""Test helpers for the `lareid` command: its subcommands run in this process (`run_index`, `run_evaluate`,
`run_search`, `run_train`), training flag lists (`flags`, `QUICK_TRAINING`), small generated Market-layout sets
(`tiny_market`), an interrupted index (`save_interrupted_index`), one-line errors; and for the fault-injection suite
(folder snapshots, a small tmpfs). tests/ is on sys.path through tests/conftest.py."""

import hashlib
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from hf_lareid.data import generate_synthetic_reid
from hf_lareid.retrieval import GalleryIndex
from hf_lareid_cli import main


def tiny_market(folder, num_ids, num_cameras, **options):
    """A generated set in the Market-1501 layout (half the ids train, half test) of 64x32 images, the tiny model's
    input size, 2 per id and camera; `options` go to `generate_synthetic_reid` (seed, first_id, distractors...)."""
    return generate_synthetic_reid(
        folder, num_ids=num_ids, num_cameras=num_cameras, images_per_camera=2, image_size=(64, 32), **options
    )


def run_cli(*argv, capsys):
    """`lareid ARGV` in this process: (exit status, stdout, stderr)."""
    status = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def run_index(model_dir, data_dir, index_dir, *extra, capsys, dataset="market1501"):
    """`lareid index MODEL --dataset DATASET --data_dir DATA --index_dir INDEX EXTRA...` in this process."""
    where = ["--dataset", dataset, "--data_dir", data_dir, "--index_dir", index_dir]
    return run_cli("index", model_dir, *where, *extra, capsys=capsys)


def run_evaluate(model_dir, data_dir, *extra, capsys, dataset="market1501"):
    """`lareid evaluate MODEL --dataset DATASET --data_dir DATA EXTRA...` in this process."""
    return run_cli("evaluate", model_dir, "--dataset", dataset, "--data_dir", data_dir, *extra, capsys=capsys)


def run_search(index_dir, query, *extra, capsys):
    """`lareid search --index_dir INDEX QUERY EXTRA...` in this process."""
    return run_cli("search", "--index_dir", index_dir, query, *extra, capsys=capsys)


def run_train(output_dir, data_dir, *extra, capsys):
    """`lareid train --output_dir OUT --data_dir DATA EXTRA...` in this process."""
    return run_cli("train", "--output_dir", output_dir, "--data_dir", data_dir, *extra, capsys=capsys)


def flags(**values) -> list[str]:
    """Command-line flags in the keywords' order: `flags(max_steps=4, bf16=False)` -> `["--max_steps", "4", "--bf16",
    "False"]`."""
    return [item for name, value in values.items() for item in (f"--{name}", str(value))]


SMALL_SYNTHETIC = flags(synthetic_num_ids=12, synthetic_num_cameras=2, synthetic_images_per_camera=2)
"""Training flags of the generated set of the CLI and entry-point tests: 6 training and 6 test ids, 2 cameras x 2."""
QUICK_TRAINING = [*SMALL_SYNTHETIC, *flags(bf16=False, disable_tqdm=True)]
"""Training flags of a float32 run on `SMALL_SYNTHETIC` without progress bars."""


def save_interrupted_index(complete, index_dir, rows, paths):
    """Saves at `index_dir`, as an interrupted build would leave it, an index of `complete`'s model holding only its
    entries `rows` (a list of positions), stored under `paths`."""
    partial = GalleryIndex(
        complete.dim, model_reference=complete.model_reference, model_fingerprint=complete.model_fingerprint
    )
    partial.add(
        complete._index.reconstruct_n(0, len(complete))[rows],
        person_ids=complete.person_ids[rows],
        camera_ids=complete.camera_ids[rows],
        paths=paths,
    )
    partial.save(index_dir)


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
