"""What every re-ID loader produces: :class:`ReIDRecord` per image, a :class:`ReIDCollection` per folder, and the one
error, :class:`ReIDDataError`, whose message names the file and the fix.

Parsing happens in plain Python, so that errors name the offending file before any Arrow file is written;
:mod:`hf_lareid.data.builder` then writes the records into the `datasets` cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..utils.errors import InvalidInputError

__all__ = ["QUERY_GALLERY_PAIRS", "ReIDCollection", "ReIDDataError", "ReIDRecord"]

QUERY_GALLERY_PAIRS = {"query": "gallery", "test_query": "test_gallery"}
"""Each query split and the gallery split it is searched against."""


class ReIDDataError(InvalidInputError):
    """A re-ID folder cannot be loaded; the message names the file or folder and says how to fix it."""


@dataclass(frozen=True)
class ReIDRecord:
    """One image of a re-ID split.

    Args:
        path (`str`): absolute path of the image file (the ``path`` column stores it relative to the data folder).
        person_id (`int`): identity; in Market-1501 galleries 0 marks distractors and -1 junk images.
        camera_id (`int`, *optional*, defaults to -1): camera the image was taken with, -1 when unknown.
    """

    path: str
    person_id: int
    camera_id: int = -1


@dataclass
class ReIDCollection:
    """What a loader found in a folder, before anything is written to the cache.

    Args:
        root (`Path`): the folder that was read (absolute).
        splits (`dict[str, list[ReIDRecord]]`): records per split name, in a deterministic order.
        person_names (`dict[int, str]`, *optional*): display name per person id (a folder name), used as the
            `ClassLabel` names of the train split; ids without an entry are named by their number.
        folders (`dict[str, Path]`, *optional*): the folder each split was read from, for error messages.
        sources (`list[Path]`, *optional*): other files the rows depend on (MSMT17's list files); the cache key
            covers them like the images.
        labeled_splits (`tuple[str, ...]`, *optional*, defaults to `("train",)`): splits whose persons are the
            training identities, so their rows get the training `label` (MSMT17's separate ``val``); the other
            splits hold -1.
    """

    root: Path
    splits: dict[str, list[ReIDRecord]]
    person_names: dict[int, str] = field(default_factory=dict)
    folders: dict[str, Path] = field(default_factory=dict)
    sources: list[Path] = field(default_factory=list)
    labeled_splits: tuple[str, ...] = ("train",)
