"""Folders of re-ID images: the data root that ``path`` columns are relative to, folder checks and image listing."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from .records import ReIDDataError

logger = logging.getLogger(__name__)

__all__ = ["IMAGE_EXTENSIONS", "data_root", "list_image_files", "relative_path", "require_folder"]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
"""File extensions (lower case) read as images; every other file (``Thumbs.db``, ``readme.txt``) is skipped."""


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
                is_image = os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS
                if (is_image or recursive) and entry.is_symlink():
                    _check_link(entry.path)
                if entry.is_dir():
                    if recursive:
                        pending.append(entry.path)
                elif is_image:
                    found.append(entry.path)
                else:
                    skipped += 1
    if skipped:
        logger.debug("Skipped %d non-image files in %s", skipped, folder)
    return sorted(found)


def _check_link(path: str) -> None:
    """Raises `ReIDDataError` naming the symbolic link `path` when it leads to nothing: a loop or a missing target."""
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            problem = "is a symbolic link loop (it leads back to itself)"
        else:
            problem = f"is a symbolic link to {os.readlink(path)}, which does not exist"
        raise ReIDDataError(
            f"{path} {problem}: point the link at an image file, or remove the link from the folder."
        ) from None
