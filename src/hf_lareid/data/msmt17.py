"""MSMT17 as distributed: image folders ``train/`` and ``test/`` and list files naming each split's images.

Layout (``MSMT17_V1``; ``MSMT17_V2`` names the folders ``mask_train_v2/`` and ``mask_test_v2/``, also read)::

    train/0000/0000_000_01_0303morning_0015_0.jpg      list_train.txt    "0000/0000_000_01_0303morning_0015_0.jpg 0"
    test/0000/0000_000_01_0303morning_0008_0.jpg       list_val.txt      (train/ images, training identities)
                                                       list_query.txt, list_gallery.txt  (test/ images)

Each list line is ``relative/path label``: the path inside the image folder and the person id (training and test ids
are numbered separately, both from 0). The camera is the third ``_`` field of the file name (``01`` -> 1, of 15).
``list_val.txt`` joins ``train`` by default (the 32,621-image, 1,041-identity training set of the paper); with
``separate_val=True`` it becomes its own split ``val``, whose rows carry the training labels. Evaluated under the
Market-1501 protocol (11,659 queries, 82,161 gallery images).

Example:
    >>> from hf_lareid.data import load_reid_dataset
    >>> msmt = load_reid_dataset("msmt17", data_dir="MSMT17_V1")  # doctest: +SKIP
    >>> msmt["train"].features["label"].num_classes, msmt["train"].num_rows  # doctest: +SKIP
    (1041, 32621)
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from ..utils.errors import InvalidInputError
from .file_names import FileNameScheme
from .folders import list_image_files, require_folder
from .records import ReIDCollection, ReIDDataError, ReIDRecord

__all__ = ["MSMT17_LISTS", "MSMT17_SCHEME", "collect_msmt17", "parse_msmt17_camera"]

MSMT17_LISTS = {
    "train": ("train", "list_train.txt"),
    "val": ("train", "list_val.txt"),
    "query": ("test", "list_query.txt"),
    "gallery": ("test", "list_gallery.txt"),
}
"""Per split: the image folder its list points into and the list file."""

_IMAGE_FOLDERS = {"train": ("train", "mask_train_v2"), "test": ("test", "mask_test_v2")}
_LAYOUT = "An MSMT17 folder holds train/, test/, list_train.txt, list_val.txt, list_query.txt and list_gallery.txt"


MSMT17_SCHEME = FileNameScheme(
    dataset="MSMT17",
    pattern=re.compile(r"^(?P<person>\d+)_[^_]*_(?P<camera>\d+)_.*$"),
    template="PPPP_NNN_CC_DATETIME_FFFF_N.jpg",
    example="0000_000_01_0303morning_0015_0.jpg",
    fix="Rename it, or remove its line from the list file.",
)
"""File stem pattern: person id, image number, camera (of 15), date and time of day, frame, box index."""


def parse_msmt17_camera(path: str | os.PathLike) -> int:
    """Camera id of an MSMT17 file name: its third ``_`` field, or `ReIDDataError` naming the file.

    Example:
        >>> parse_msmt17_camera("0000/0000_000_01_0303morning_0015_0.jpg")
        1
    """
    return MSMT17_SCHEME.parse(path)[1]


def _image_folder(root: Path, kind: str) -> Path:
    for name in _IMAGE_FOLDERS[kind]:
        if (root / name).is_dir():
            return root / name
    return require_folder(
        root / kind, f"MSMT17 image folder ({' or '.join(_IMAGE_FOLDERS[kind])}):", f"{_LAYOUT}; restore it."
    )


def _read_list(list_file: Path, image_folder: Path, images: set[str]) -> list[ReIDRecord]:
    """Records of the ``relative/path label`` lines of `list_file`; errors name the file, the line and the fix."""
    if not list_file.is_file():
        raise FileNotFoundError(
            f"MSMT17 list file {list_file} does not exist. {_LAYOUT}; restore it, or leave the split out with "
            "splits=[...]."
        )
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ReIDDataError(
            f"MSMT17 list file {list_file} is not UTF-8 text ({error}): restore the file of the dataset's release."
        ) from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            raise ReIDDataError(
                f"{list_file} line {number} reads {line.strip()!r}, not 'relative/path label' (e.g. "
                "'0000/0000_000_01_0303morning_0015_0.jpg 0'). Fix or remove the line."
            )
        path = os.path.normpath(os.path.join(image_folder, fields[0]))
        if path not in images:
            raise ReIDDataError(
                f"{list_file} line {number} names {fields[0]}, which is not an image in {image_folder}. Restore the "
                "image or remove the line."
            )
        records.append(ReIDRecord(path, int(fields[1]), parse_msmt17_camera(path)))
    return records


def collect_msmt17(
    data_dir: str | os.PathLike, splits: Sequence[str] | None = None, separate_val: bool = False
) -> ReIDCollection:
    """Parse an MSMT17 folder into records for `splits` (default: train, query, gallery; plus val if `separate_val`)."""
    root = require_folder(
        data_dir, "MSMT17 folder", "Pass data_dir= pointing at the unpacked MSMT17 folder (MSMT17_V1)."
    )
    known = ["train", "val", "query", "gallery"] if separate_val else ["train", "query", "gallery"]
    splits = list(splits) if splits is not None else known
    unknown = sorted(set(splits) - set(known))
    if unknown:
        extra = " (val is its own split only with separate_val=True)" if "val" in unknown else ""
        raise InvalidInputError(f"Unknown MSMT17 split(s) {unknown}; choose from {known}{extra}.")
    folders, images = {}, {}
    records: dict[str, list[ReIDRecord]] = {}
    sources = []
    for split in splits:
        kind, list_name = MSMT17_LISTS[split]
        if kind not in folders:
            folders[kind] = _image_folder(root, kind)
            images[kind] = set(list_image_files(folders[kind], recursive=True))
        lists = [list_name] + (["list_val.txt"] if split == "train" and not separate_val else [])
        records[split] = []
        for name in lists:
            records[split] += _read_list(root / name, folders[kind], images[kind])
            sources.append(root / name)
    return ReIDCollection(
        root=root,
        splits=records,
        folders={split: folders[MSMT17_LISTS[split][0]] for split in splits},
        sources=sources,
        labeled_splits=("train", "val"),
    )
