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
        "bounding_box_test": _market_names([1, 3, 5], [1, 2], 2) + ["-1_c1s1_000401_03.jpg", "0000_c2s1_000151_01.jpg"],
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


def _write_all(root: Path, folders: dict[str, Sequence[str]]) -> Path:
    seed = 0
    for folder, names in folders.items():
        for name in names:
            seed += 1
            write_image(root / folder / name, seed)
    return root


@pytest.fixture
def duke_dir(tmp_path) -> Path:
    """DukeMTMC-reID layout: 3 train ids, 2 test ids over cameras 1 and 5 (names ``0001_c1_f0046182.jpg``)."""

    def names(person_ids, per_camera):
        return [
            f"{person_id:04d}_c{camera}_f{46182 + 10 * shot + camera:07d}.jpg"
            for person_id in person_ids
            for camera in (1, 5)
            for shot in range(per_camera)
        ]

    folders = {
        "bounding_box_train": names([1, 4, 9], 2),
        "query": names([3, 6], 1),
        "bounding_box_test": names([3, 6], 2),
    }
    return _write_all(tmp_path / "DukeMTMC-reID", folders)


@pytest.fixture
def cuhk03_np_dir(tmp_path) -> Path:
    """``cuhk03-np/{labeled,detected}`` with the Market layout inside; detected has one image fewer per split."""

    def names(person_ids, per_camera, drop_last=False):
        found = [
            f"{person_id:04d}_c{camera}_{camera * 5 + shot + 1}.png"
            for person_id in person_ids
            for camera in (1, 2)
            for shot in range(per_camera)
        ]
        return found[:-1] if drop_last else found

    root = tmp_path / "cuhk03-np"
    for variant in ("labeled", "detected"):
        drop = variant == "detected"
        _write_all(
            root / variant,
            {
                "bounding_box_train": names([1, 2, 3], 2, drop),
                "query": names([7, 8], 1, drop),
                "bounding_box_test": names([7, 8], 2, drop),
            },
        )
    return root


@pytest.fixture
def msmt17_dir(tmp_path) -> Path:
    """MSMT17_V1 layout: ``train/`` and ``test/`` person folders and the four list files (``path label`` lines).

    Train: ids 0-2 in list_train (4 images each, cameras 1 and 3), id 0-2 again in list_val (1 image each).
    Test: ids 0-1 (numbered apart from train), one query per camera 2 and 7, two gallery images per camera.
    """
    root = tmp_path / "MSMT17_V1"
    lists: dict[str, list[str]] = {name: [] for name in ("train", "val", "query", "gallery")}

    def add(split, folder, person_id, camera, number):
        relative = f"{person_id:04d}/{person_id:04d}_{number:03d}_{camera:02d}_0303morning_{number:04d}_0.jpg"
        write_image(root / folder / relative, seed=len(lists[split]) * 31 + person_id + camera + (folder == "test") * 7)
        lists[split].append(f"{relative} {person_id}")

    number = 0
    for person_id in range(3):
        for camera in (1, 3):
            for _ in range(2):
                number += 1
                add("train", "train", person_id, camera, number)
        number += 1
        add("val", "train", person_id, 3, number)
    for person_id in range(2):
        for camera in (2, 7):
            number += 1
            add("query", "test", person_id, camera, number)
            for _ in range(2):
                number += 1
                add("gallery", "test", person_id, camera, number)
    for split, lines in lists.items():
        (root / f"list_{split}.txt").write_text("\n".join(lines) + "\n")
    return root
