"""DukeMTMC-reID as distributed: the Market-1501 layout (``bounding_box_train/``, ``query/``, ``bounding_box_test/``).

File names follow ``PPPP_cC_fFFFFFFF.jpg``: person id, camera ``C`` (1-8) and frame; e.g. ``0001_c2_f0046182.jpg``.
The real set holds 16,522 / 2,228 / 17,661 images and 702 training identities; its gallery's 408 distractor
identities carry ordinary ids. Evaluated under the Market-1501 protocol.

Example:
    >>> from hf_lareid.data import load_reid_dataset
    >>> duke = load_reid_dataset("dukemtmcreid", data_dir="DukeMTMC-reID")  # doctest: +SKIP
    >>> duke["train"].features["label"].num_classes  # doctest: +SKIP
    702
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from .file_names import FileNameScheme
from .market_layout import collect_bounding_box_folders
from .records import ReIDCollection

__all__ = ["DUKEMTMC_SCHEME", "collect_dukemtmc"]

DUKEMTMC_SCHEME = FileNameScheme(
    dataset="DukeMTMC-reID",
    pattern=re.compile(r"^(?P<person>\d+)_c(?P<camera>\d+)_f(\d+)$"),
    template="PPPP_cC_fFFFFFFF.jpg",
    example="0001_c2_f0046182.jpg",
)
"""File stem pattern: person id, camera, frame."""


def collect_dukemtmc(data_dir: str | os.PathLike, splits: Sequence[str] | None = None) -> ReIDCollection:
    """Parse a DukeMTMC-reID folder into records for `splits` (default: train, query, gallery)."""
    return collect_bounding_box_folders(data_dir, splits, DUKEMTMC_SCHEME)
