"""Market-1501 as distributed: ``bounding_box_train/``, ``query/``, ``bounding_box_test/`` (``gt_bbox/`` is ignored).

File names follow ``PPPP_cCsS_FFFFFF_NN.jpg``: person id (4 digits, ``0000`` for distractors, ``-1`` for junk),
camera ``C``, sequence ``S``, frame ``FFFFFF`` and box index ``NN``; e.g. ``0002_c1s1_000451_03.jpg``.
The gallery keeps junk (-1) and distractors (0), as the standard protocol needs them; the train and query splits
skip them. The real set holds 12,936 / 3,368 / 19,732 images and 751 training identities.

Example:
    >>> from hf_lareid.data import load_reid_dataset
    >>> market = load_reid_dataset("market1501", data_dir="Market-1501-v15.09.15")  # doctest: +SKIP
    >>> market["train"].features["label"].num_classes  # doctest: +SKIP
    751
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence

from ._common import ReIDCollection, ReIDDataError, ReIDRecord, list_image_files, require_folder

logger = logging.getLogger(__name__)

__all__ = ["MARKET1501_FOLDERS", "MARKET1501_NAME_PATTERN", "collect_market1501", "parse_market1501_name"]

MARKET1501_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
"""Sub-folder read for each split."""

MARKET1501_NAME_PATTERN = re.compile(r"^(-1|\d+)_c(\d+)s(\d+)_(\d+)_(\d+)$")
"""File stem pattern: person id, camera, sequence, frame, box index."""

_JUNK_OR_DISTRACTOR = (-1, 0)


def parse_market1501_name(path: str | os.PathLike) -> tuple[int, int]:
    """Person id and camera id of a Market-1501 file name, or `ReIDDataError` naming the file.

    Example:
        >>> parse_market1501_name("0002_c1s1_000451_03.jpg"), parse_market1501_name("-1_c3s2_000401_03.jpg")
        ((2, 1), (-1, 3))
    """
    match = MARKET1501_NAME_PATTERN.match(os.path.splitext(os.path.basename(path))[0])
    if match is None:
        raise ReIDDataError(
            f"File name {path} does not follow the Market-1501 pattern PPPP_cCsS_FFFFFF_NN.jpg "
            "(e.g. 0002_c1s1_000451_03.jpg). Rename it or move it out of the folder, or load a folder-per-person "
            'set with load_reid_dataset("identity_folders", ...).'
        )
    return int(match.group(1)), int(match.group(2))


def collect_market1501(data_dir: str | os.PathLike, splits: Sequence[str] | None = None) -> ReIDCollection:
    """Parse a Market-1501-layout folder into records for `splits` (default: train, query, gallery).

    Only the sub-folders of the requested splits must exist. Raises `FileNotFoundError` for a missing folder and
    `ReIDDataError` for a file name that does not parse.
    """
    root = require_folder(
        data_dir, "Market-1501 folder", "Pass data_dir= pointing at the unpacked Market-1501 folder."
    )
    splits = list(splits) if splits is not None else list(MARKET1501_FOLDERS)
    unknown = sorted(set(splits) - set(MARKET1501_FOLDERS))
    if unknown:
        raise ValueError(f"Unknown Market-1501 split(s) {unknown}; choose from {list(MARKET1501_FOLDERS)}.")
    records, folders = {}, {}
    for split in splits:
        folder = require_folder(
            root / MARKET1501_FOLDERS[split],
            f"Market-1501 sub-folder for split {split!r}:",
            f"A Market-1501 folder holds {', '.join(MARKET1501_FOLDERS.values())}; restore it, or leave the split "
            f"out with splits=[...].",
        )
        folders[split] = folder
        records[split] = []
        skipped = 0
        for path in list_image_files(folder):
            person_id, camera_id = parse_market1501_name(path)
            if split != "gallery" and person_id in _JUNK_OR_DISTRACTOR:
                skipped += 1
                continue
            records[split].append(ReIDRecord(path, person_id, camera_id))
        if skipped:
            logger.warning("Skipped %d junk/distractor images (person id -1 or 0) in %s", skipped, folder)
    return ReIDCollection(root=root, splits=records, folders=folders)
