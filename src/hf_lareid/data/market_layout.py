"""The Market-1501 folder layout (``bounding_box_train/``, ``query/``, ``bounding_box_test/``), shared by
Market-1501, DukeMTMC-reID and CUHK03-np: they differ only in their :class:`~hf_lareid.data.file_names.FileNameScheme`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from ..utils.errors import InvalidInputError
from .file_names import FileNameScheme
from .folders import list_image_files, require_folder
from .records import ReIDCollection, ReIDRecord

logger = logging.getLogger(__name__)

__all__ = ["BOUNDING_BOX_FOLDERS", "collect_bounding_box_folders"]

BOUNDING_BOX_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
"""Sub-folder read for each split in the Market-1501 layout (also DukeMTMC-reID and CUHK03-np)."""

_JUNK_OR_DISTRACTOR = (-1, 0)


def collect_bounding_box_folders(
    data_dir: str | os.PathLike,
    splits: Sequence[str] | None,
    scheme: FileNameScheme,
    image_root: str | os.PathLike | None = None,
) -> ReIDCollection:
    """Parse a folder in the Market-1501 layout (:data:`BOUNDING_BOX_FOLDERS`) whose files `scheme` names.

    Only the sub-folders of the requested `splits` (default: train, query, gallery) must exist. The gallery keeps junk
    (person id -1) and distractors (0), which the Market-1501 protocol needs; train and query skip them. Paths are
    relative to `data_dir`; the split folders sit in `image_root` (default `data_dir`; CUHK03-np reads a variant
    sub-folder). Raises `FileNotFoundError` for a missing folder, `ReIDDataError` for a file name that does not parse.
    """
    root = require_folder(
        data_dir, f"{scheme.dataset} folder", f"Pass data_dir= pointing at the unpacked {scheme.dataset} folder."
    )
    image_root = root if image_root is None else Path(image_root)
    splits = list(splits) if splits is not None else list(BOUNDING_BOX_FOLDERS)
    unknown = sorted(set(splits) - set(BOUNDING_BOX_FOLDERS))
    if unknown:
        raise InvalidInputError(
            f"Unknown {scheme.dataset} split(s) {unknown}; choose from {list(BOUNDING_BOX_FOLDERS)}."
        )
    records, folders = {}, {}
    for split in splits:
        folder = require_folder(
            image_root / BOUNDING_BOX_FOLDERS[split],
            f"{scheme.dataset} sub-folder for split {split!r}:",
            f"A {scheme.dataset} folder holds {', '.join(BOUNDING_BOX_FOLDERS.values())}; restore it, or leave the "
            "split out with splits=[...].",
        )
        folders[split] = folder
        records[split] = []
        skipped = 0
        for path in list_image_files(folder):
            person_id, camera_id = scheme.parse(path)
            if split != "gallery" and person_id in _JUNK_OR_DISTRACTOR:
                skipped += 1
                continue
            records[split].append(ReIDRecord(path, person_id, camera_id))
        if skipped:
            logger.warning("Skipped %d junk/distractor images (person id -1 or 0) in %s", skipped, folder)
    return ReIDCollection(root=root, splits=records, folders=folders)
