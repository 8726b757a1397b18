"""Small re-ID folders in the real layouts, written per test into tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_image(path: Path, seed: int = 0, size: tuple[int, int] = (16, 8), mode: str = "RGB") -> Path:
    """Write a random (height, width) image in `mode`; the format follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


@pytest.fixture
def image_writer() -> Callable[..., Path]:
    return write_image


def _market_names(person_ids: Sequence[int], cameras: Sequence[int], per_camera: int) -> list[str]:
    return [
        f"{person_id:04d}_c{camera}s1_{shot * 25:06d}_{shot + 1:02d}.jpg"
        for person_id in person_ids
        for camera in cameras
        for shot in range(per_camera)
    ]


@pytest.fixture
def market_dir(tmp_path) -> Path:
    """Market-1501 layout: 4 train ids, 3 test ids over 2 cameras, plus junk, a distractor and a Thumbs.db."""
    root = tmp_path / "Market-1501"
    seed = 0
    for folder, names in {
        "bounding_box_train": _market_names([2, 7, 10, 11], [1, 2], 2),
        "query": _market_names([1, 3, 5], [1, 2], 1),
        "bounding_box_test": _market_names([1, 3, 5], [1, 2], 2)
        + ["-1_c1s1_000401_03.jpg", "0000_c2s1_000151_01.jpg"],
    }.items():
        for name in names:
            seed += 1
            write_image(root / folder / name, seed)
        (root / folder / "Thumbs.db").write_bytes(b"not an image")
    return root


@pytest.fixture
def person_folders_factory(tmp_path) -> Callable[..., Path]:
    """Make ``root/<name>/<file>`` folders: `names` of persons, each with the given file names."""

    def make(names: Sequence[str], files: Sequence[str], root_name: str = "people") -> Path:
        root = tmp_path / root_name
        for index, name in enumerate(names):
            for shot, file_name in enumerate(files):
                write_image(root / name / file_name, seed=index * 100 + shot)
        return root

    return make


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"
