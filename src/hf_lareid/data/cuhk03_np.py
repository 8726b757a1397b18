"""CUHK03 in the new protocol (767 training / 700 test identities, Zhong et al. 2017) in its common layout.

Layout: ``cuhk03-np/labeled/`` (hand-drawn boxes) and ``cuhk03-np/detected/`` (DPM boxes), each in the Market-1501
layout (``bounding_box_train/``, ``query/``, ``bounding_box_test/``) with file names ``PPPP_cC_N.png``: person id,
camera ``C`` (1 or 2) and image number; e.g. ``0001_c1_1.png``. ``variant`` picks ``"labeled"`` (default) or
``"detected"``; `data_dir` may be the ``cuhk03-np`` folder, the folder holding it, or one variant folder itself (then
that variant is read). The labeled set holds 7,368 / 1,400 / 5,328 images. The new protocol is evaluated like
Market-1501 (all gallery images, mAP), so ``protocol="auto"`` is right; ``protocol="cuhk03"`` is the single-shot CMC
of the old 1,367/100 protocol.

Example:
    >>> from hf_lareid.data import load_reid_dataset
    >>> cuhk03 = load_reid_dataset("cuhk03_np", data_dir="cuhk03-np", variant="detected")  # doctest: +SKIP
    >>> cuhk03["train"].features["label"].num_classes  # doctest: +SKIP
    767
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from ..utils.errors import InvalidInputError
from .file_names import FileNameScheme
from .folders import require_folder
from .market_layout import BOUNDING_BOX_FOLDERS, collect_bounding_box_folders
from .records import ReIDCollection

__all__ = ["CUHK03_NP_SCHEME", "CUHK03_NP_VARIANTS", "collect_cuhk03_np"]

CUHK03_NP_VARIANTS = ("labeled", "detected")
"""Sub-folders of ``cuhk03-np``: hand-drawn (``labeled``) or detector (``detected``) bounding boxes."""

CUHK03_NP_SCHEME = FileNameScheme(
    dataset="CUHK03-np",
    pattern=re.compile(r"^(?P<person>\d+)_c(?P<camera>\d+)_(\d+)$"),
    template="PPPP_cC_N.png",
    example="0001_c1_1.png",
)
"""File stem pattern: person id, camera, image number."""


def _variant_folder(root: Path, variant: str | None) -> Path:
    """The folder holding ``bounding_box_train/`` etc. for `variant`, searched in `root`, `root/cuhk03-np`."""
    if variant is not None and variant not in CUHK03_NP_VARIANTS:
        raise InvalidInputError(f"variant={variant!r} is not one of {CUHK03_NP_VARIANTS}.")
    if any((root / folder).is_dir() for folder in BOUNDING_BOX_FOLDERS.values()):  # a variant folder itself
        if variant is not None and root.name != variant:
            raise InvalidInputError(
                f"{root} is one CUHK03-np variant folder ({root.name!r}), but variant={variant!r} was asked for: pass "
                f"its parent folder, or leave variant out."
            )
        return root
    variant = variant or CUHK03_NP_VARIANTS[0]
    for folder in (root / variant, root / "cuhk03-np" / variant):
        if folder.is_dir():
            return folder
    return require_folder(
        root / variant,
        f"CUHK03-np sub-folder {variant!r}:",
        "Pass data_dir= pointing at the cuhk03-np folder (holding labeled/ and detected/) or at one of them.",
    )


def collect_cuhk03_np(
    data_dir: str | os.PathLike, splits: Sequence[str] | None = None, variant: str | None = None
) -> ReIDCollection:
    """Parse a CUHK03-np folder into records for `splits` (default: train, query, gallery) of `variant`."""
    root = require_folder(data_dir, "CUHK03-np folder", "Pass data_dir= pointing at the unpacked cuhk03-np folder.")
    return collect_bounding_box_folders(root, splits, CUHK03_NP_SCHEME, image_root=_variant_folder(root, variant))
