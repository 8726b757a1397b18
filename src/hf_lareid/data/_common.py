"""Shared parts of the re-ID loaders: records, folder listing, cache digests, image checks, camera ids.

Every loader (Market-1501, DukeMTMC-reID, CUHK03-np, MSMT17, the course set, identity folders, the generated set)
turns a folder into a :class:`ReIDCollection`: one list of :class:`ReIDRecord` per split. The sets in the
Market-1501 layout (Market-1501, DukeMTMC-reID, CUHK03-np) share :func:`collect_bounding_box_folders` and differ only
in their :class:`FileNameScheme`. Parsing happens here, in plain Python, so that errors name the offending file before
any Arrow file is written; :mod:`hf_lareid.data.builder` then writes the records into the `datasets` cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..image_utils import ImageReadError, read_image

logger = logging.getLogger(__name__)

__all__ = [
    "BOUNDING_BOX_FOLDERS",
    "CAMERA_PATTERN",
    "FileNameScheme",
    "IMAGE_EXTENSIONS",
    "QUERY_GALLERY_PAIRS",
    "ReIDCollection",
    "ReIDDataError",
    "ReIDRecord",
    "check_image",
    "collect_bounding_box_folders",
    "data_root",
    "folder_digest",
    "list_image_files",
    "parse_camera_id",
    "relative_path",
    "require_folder",
]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
"""File extensions (lower case) read as images; every other file (``Thumbs.db``, ``readme.txt``) is skipped."""

CAMERA_PATTERN = re.compile(r"(?:^|[^a-z0-9])(?:camera|cam|c)[_-]?(\d+)", re.IGNORECASE)
"""How a camera id is found in a file name (or a path relative to the person folder): ``c1``, ``cam1``, ``cam_2``,
``camera-3`` at the start or after a non-alphanumeric character (``0002_c1s1_000451_03.jpg`` -> 1,
``cam2/angle3.jpg`` -> 2, ``front_c3.png`` -> 3). Names without such a token get camera id -1 (unknown)."""

QUERY_GALLERY_PAIRS = {"query": "gallery", "test_query": "test_gallery"}
"""Each query split and the gallery split it is searched against."""

BOUNDING_BOX_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
"""Sub-folder read for each split in the Market-1501 layout (also DukeMTMC-reID and CUHK03-np)."""

_JUNK_OR_DISTRACTOR = (-1, 0)

# Bumped whenever the rows a loader writes change meaning, so that old caches are not reused.
# 3: `path` relative to the data folder, `label` on every split.
_CACHE_FORMAT = 3


class ReIDDataError(ValueError):
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


@dataclass(frozen=True)
class FileNameScheme:
    """How a data set in the Market-1501 layout names its images; :meth:`parse` reads person and camera ids.

    Args:
        dataset (`str`): the set's name in messages (``"DukeMTMC-reID"``).
        pattern (`re.Pattern`): matches a file stem, with groups ``person`` and ``camera``.
        template (`str`): the pattern as users read it (``"PPPP_cC_fFFFFFFF.jpg"``).
        example (`str`): a real file name (``"0001_c1_f0046182.jpg"``).
    """

    dataset: str
    pattern: re.Pattern
    template: str
    example: str

    def parse(self, path: str | os.PathLike) -> tuple[int, int]:
        """Person id and camera id of the file name of `path`, or `ReIDDataError` naming the file and the pattern."""
        match = self.pattern.match(os.path.splitext(os.path.basename(path))[0])
        if match is None:
            raise ReIDDataError(
                f"File name {path} does not follow the {self.dataset} pattern {self.template} (e.g. {self.example}). "
                "Rename it or move it out of the folder, or load a folder-per-person set with "
                'load_reid_dataset("identity_folders", ...).'
            )
        return int(match.group("person")), int(match.group("camera"))


def data_root(data_dir: str | os.PathLike) -> Path:
    """The absolute folder that the ``path`` column of a set loaded from `data_dir` is relative to.

    Example:
        >>> data = load_reid_dataset("market1501", data_dir="~/Market-1501")  # doctest: +SKIP
        >>> os.path.join(data_root("~/Market-1501"), data["query"][0]["path"])  # doctest: +SKIP
        '/home/me/Market-1501/query/0001_c1s1_001051_00.jpg'
    """
    return Path(data_dir).expanduser().absolute()


def require_folder(path: str | os.PathLike, what: str, fix: str) -> Path:
    """Return `path` as an absolute `Path`, or raise `FileNotFoundError` naming it, `what` it is and the `fix`."""
    folder = data_root(path)
    if not folder.is_dir():
        state = "is a file, not a folder" if folder.exists() else "does not exist"
        raise FileNotFoundError(f"{what} {folder} {state}. {fix}")
    return folder


def relative_path(path: str | os.PathLike, root: str | os.PathLike) -> str:
    """`path` relative to `root`, with ``/`` separators: what the ``path`` column stores (shareable, not local).

    Example:
        >>> relative_path("/data/Market/query/0001_c1s1_001051_00.jpg", "/data/Market")
        'query/0001_c1s1_001051_00.jpg'
    """
    return Path(os.path.relpath(path, root)).as_posix()


def list_image_files(folder: str | os.PathLike, recursive: bool = False) -> list[str]:
    """Absolute paths of the image files in `folder`, sorted; hidden files and non-images (``Thumbs.db``) are skipped.

    Uses `os.scandir` and plain strings: listing Market-1501's 36k files this way takes well under a second.
    """
    found, skipped, pending = [], 0, [os.path.abspath(folder)]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    if recursive:
                        pending.append(entry.path)
                elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                    found.append(entry.path)
                else:
                    skipped += 1
    if skipped:
        logger.debug("Skipped %d non-image files in %s", skipped, folder)
    return sorted(found)


def parse_camera_id(name: str) -> int:
    """Camera id found by :data:`CAMERA_PATTERN` in `name`, or -1.

    Example:
        >>> parse_camera_id("0002_c1s1_000451_03.jpg"), parse_camera_id("cam2/img_7.png"), parse_camera_id("a.jpg")
        (1, 2, -1)
    """
    match = CAMERA_PATTERN.search(name)
    return int(match.group(1)) if match else -1


def folder_digest(root: str | os.PathLike, files: Iterable[str], options: Mapping[str, object]) -> str:
    """A hex digest of a folder's identity, used as the cache key of its Arrow build.

    It covers the absolute folder path (a moved folder is rebuilt, since `datasets.Image` stores absolute paths),
    every image's path relative to `root`, size and modification time (an added, removed or replaced image is
    rebuilt), and the loader options. Only `stat` is called per file (about 10 µs); the images are not read.
    """
    root = os.path.abspath(root)
    digest = hashlib.sha256()
    digest.update(f"{_CACHE_FORMAT}\0{root}\0".encode())
    digest.update(json.dumps(options, sort_keys=True, default=str).encode())
    for path in sorted(files):
        stat = os.stat(path)
        digest.update(f"\0{os.path.relpath(path, root)}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


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
        raise ValueError(f"Unknown {scheme.dataset} split(s) {unknown}; choose from {list(BOUNDING_BOX_FOLDERS)}.")
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


def check_image(path: str | os.PathLike) -> Image.Image:
    """Decode the image at `path` fully once and return it, raising `ReIDDataError` if it is corrupt, truncated or a
    decompression bomb.

    Loaders call this while building the Arrow cache, so a cached load does not repeat it.
    """
    try:
        return read_image(path)
    except ImageReadError as error:
        raise ReIDDataError(str(error)) from error
