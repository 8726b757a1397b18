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

import os
import re
from collections.abc import Sequence

from .file_names import FileNameScheme
from .market_layout import BOUNDING_BOX_FOLDERS, collect_bounding_box_folders
from .records import ReIDCollection

__all__ = ["MARKET1501_FOLDERS", "MARKET1501_SCHEME", "collect_market1501", "parse_market1501_name"]

MARKET1501_FOLDERS = BOUNDING_BOX_FOLDERS
"""Sub-folder read for each split."""

MARKET1501_SCHEME = FileNameScheme(
    dataset="Market-1501",
    pattern=re.compile(r"^(?P<person>-1|\d+)_c(?P<camera>\d+)s(\d+)_(\d+)_(\d+)$"),
    template="PPPP_cCsS_FFFFFF_NN.jpg",
    example="0002_c1s1_000451_03.jpg",
)
"""File stem pattern: person id, camera, sequence, frame, box index."""


def parse_market1501_name(path: str | os.PathLike) -> tuple[int, int]:
    """Person id and camera id of a Market-1501 file name, or `ReIDDataError` naming the file.

    Example:
        >>> parse_market1501_name("0002_c1s1_000451_03.jpg"), parse_market1501_name("-1_c3s2_000401_03.jpg")
        ((2, 1), (-1, 3))
    """
    return MARKET1501_SCHEME.parse(path)


def collect_market1501(data_dir: str | os.PathLike, splits: Sequence[str] | None = None) -> ReIDCollection:
    """Parse a Market-1501-layout folder into records for `splits` (default: train, query, gallery).

    Only the sub-folders of the requested splits must exist. Raises `FileNotFoundError` for a missing folder and
    `ReIDDataError` for a file name that does not parse.
    """
    return collect_bounding_box_folders(data_dir, splits, MARKET1501_SCHEME)
