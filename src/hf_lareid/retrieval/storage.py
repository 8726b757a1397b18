"""The on-disk format of a gallery index: file names, the config and its checksums, refusal, recovery, `load_index`.

A saved index is a folder holding `gallery_config.json` and what its backend keeps beside it: `index.faiss` and
`metadata.npz` (FAISS), or `qdrant_storage/` (an embedded Qdrant collection). The config records its own SHA-256
(of the canonical JSON of every other field) and those of the data files; a save never replaces a path that is not a
gallery index, and a read (`load_index`) takes no lock and writes nothing unless a crash during a save left
something to repair (see `hf_lareid.utils.io`).

Paths an index records (its model, its data folder) are stored relative to the index folder when they lie in the
same tree (under the index folder's parent), so a moved or copied folder that holds the model, the data and the
index keeps working; `relative_paths` in the config names the fields stored that way.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Optional, Union

from ..utils.errors import DamagedFileError, LAReIDError
from ..utils.io import file_sha256, folder_lock, recover_folder

logger = logging.getLogger(__name__)

CONFIG_NAME = "gallery_config.json"
INDEX_NAME = "index.faiss"
METADATA_NAME = "metadata.npz"
QDRANT_STORAGE_NAME = "qdrant_storage"
FORMAT_VERSION = 2  # 2: the config carries its own SHA-256 and the embedding settings
FAISS_FILES = (INDEX_NAME, METADATA_NAME)
# What a saved index of each backend holds beside its config, and which of those files the config checksums.
BACKEND_ENTRIES = {"faiss": FAISS_FILES, "qdrant": (QDRANT_STORAGE_NAME,)}
BACKEND_CHECKSUMMED = {"faiss": FAISS_FILES, "qdrant": ()}
CONFIG_SHA256_KEY = "config_sha256"  # SHA-256 of the canonical JSON of every other config field
RELATIVE_PATHS_KEY = "relative_paths"  # the config fields holding a path relative to the index folder
# Config fields every saved index has; `read_config` requires them.
REQUIRED_CONFIG_FIELDS = ("format_version", "dim", "index_type", "size", "settings", "metadata_fields", "sha256")
_QUICK_HASH_BYTES = 1 << 20  # the quick hash covers the first and the last MiB of a data file

BACKENDS: dict[str, type] = {}
"""The index class of each backend name a config records (`"faiss"`, `"qdrant"`), filled by [`register_backend`]."""


class CorruptIndexError(DamagedFileError, ValueError):
    """A saved gallery index is incomplete, damaged or of an unknown format."""


class IndexWriteError(LAReIDError, OSError, RuntimeError):
    """A gallery index could not be written (a full disk, no permission); the index already there is unchanged."""

    def __str__(self) -> str:
        return str(self.strerror)  # the sentence alone, without "[Errno N]"


def register_backend(cls: type) -> type:
    """Class decorator: `load_index` opens folders whose config records `cls.backend` with `cls.open`."""
    BACKENDS[cls.backend] = cls
    return cls


# ------------------------------------------------------------------------------------------- what is an index
def is_gallery_index(directory: Union[str, os.PathLike]) -> bool:
    """Whether `directory` holds a `gallery_config.json` written by [`GalleryIndex.save`] (readable, any version)."""
    try:
        config = json.loads((Path(directory) / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and {"format_version", "dim", "index_type"} <= set(config)


def check_index_target(directory: Union[str, os.PathLike]) -> None:
    """
    Raises `FileExistsError` unless `directory` is free for an index: missing, an empty folder, or a gallery index
    holding nothing but its own files. A model folder, a photo folder, a data set or a plain file is never replaced.
    """
    path = Path(os.path.abspath(Path(directory).expanduser()))
    if not path.exists() and not path.is_symlink():
        return
    name = str(directory) if str(directory) == str(path) else f"{directory} ({path})"
    if not path.is_dir():
        raise FileExistsError(f"{name} is a file, not a gallery index folder: choose another folder for the index.")
    entries = sorted(entry.name for entry in path.iterdir())
    if not entries:
        return
    if not is_gallery_index(path):
        raise FileExistsError(
            f"{name} exists and is not a gallery index (no valid {CONFIG_NAME}): choose a new or empty folder for "
            "the index; nothing in it was changed."
        )
    foreign = [name for name in entries if name not in (CONFIG_NAME, *BACKEND_ENTRIES[recorded_backend(path)])]
    if foreign:
        raise FileExistsError(
            f"{name} is a gallery index but also holds other files ({', '.join(foreign[:3])}), which a save would "
            "remove: move them out or choose another folder for the index."
        )


def recorded_backend(directory: Path) -> str:
    """The backend a gallery index folder's config records (`"faiss"` when it names none or cannot be read)."""
    try:
        backend = json.loads((directory / CONFIG_NAME).read_text()).get("backend", "faiss")
    except (OSError, ValueError, AttributeError):
        return "faiss"
    return backend if backend in BACKEND_ENTRIES else "faiss"


# ------------------------------------------------------------------------------------------- config and checks
def config_digest(config: dict) -> str:
    """SHA-256 of the canonical JSON of `config` without its own digest."""
    content = {key: value for key, value in config.items() if key != CONFIG_SHA256_KEY}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def config_text(config: dict) -> str:
    """`config` with its own SHA-256 added, as the JSON text of `gallery_config.json`."""
    config = {**config, CONFIG_SHA256_KEY: config_digest(config)}
    return json.dumps(config, indent=2) + "\n"


def data_file_records(folder: Path, names: tuple[str, ...]) -> dict:
    """The config fields that let a load check `names` in `folder`: full SHA-256, size and quick SHA-256 of each."""
    return {
        "sha256": {name: file_sha256(folder / name) for name in names},
        "file_sizes": {name: (folder / name).stat().st_size for name in names},
        "quick_sha256": {name: quick_sha256(folder / name) for name in names},
    }


def read_config(config_path: Path) -> dict:
    """The parsed `gallery_config.json`, with its format, required fields and own checksum verified."""
    try:
        config = json.loads(config_path.read_text())
        version = config["format_version"]
    except (ValueError, KeyError, TypeError) as error:
        raise CorruptIndexError(f"{config_path} is not a valid gallery index config ({error}).") from error
    if version != FORMAT_VERSION:
        raise CorruptIndexError(
            f"{config_path} has format version {version}; this hf_lareid reads version {FORMAT_VERSION}: rebuild the "
            "index with `lareid index` into a new folder."
        )
    missing = [key for key in (*REQUIRED_CONFIG_FIELDS, CONFIG_SHA256_KEY) if key not in config]
    if missing:
        raise CorruptIndexError(
            f"{config_path} lacks {missing}: it was edited or damaged; rebuild or restore the index."
        )
    if config[CONFIG_SHA256_KEY] != config_digest(config):
        raise CorruptIndexError(
            f"{config_path} does not match its own checksum: it was edited or damaged; rebuild or restore the index."
        )
    backend = config.get("backend", "faiss")
    if backend not in BACKEND_ENTRIES:
        raise CorruptIndexError(
            f"{config_path} names the backend {backend!r}; this hf_lareid knows {sorted(BACKEND_ENTRIES)}: upgrade it."
        )
    files = BACKEND_CHECKSUMMED[backend]
    if not isinstance(config["sha256"], dict) or sorted(config["sha256"]) != sorted(files):
        raise CorruptIndexError(f"{config_path} must record the SHA-256 of {list(files)}: rebuild the index.")
    return config


def check_files(directory: Path, config: dict, verify: bool) -> None:
    """Raises [`CorruptIndexError`] for a missing or damaged data file, by the policy of [`GalleryIndex.load`]."""
    sizes, quick = config.get("file_sizes"), config.get("quick_sha256")
    for name, expected in config["sha256"].items():
        path = directory / name
        if not path.is_file():
            raise CorruptIndexError(f"{path} is missing: the gallery index in {directory} is incomplete.")
        if sizes is not None and path.stat().st_size != sizes.get(name):
            raise CorruptIndexError(
                f"{path} is damaged (size {path.stat().st_size} bytes, saved {sizes.get(name)}): rebuild or restore "
                "the index."
            )
        full = verify or sizes is None or quick is None or name == METADATA_NAME
        if (file_sha256(path) != expected) if full else (quick_sha256(path) != quick.get(name)):
            raise CorruptIndexError(f"{path} is damaged (checksum mismatch): rebuild or restore the index.")


def quick_sha256(path: Path) -> str:
    """SHA-256 of the first and last MiB of `path` (all of it when smaller): what every load checks."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as file:
        digest.update(file.read(_QUICK_HASH_BYTES))
        if size > _QUICK_HASH_BYTES:
            file.seek(max(_QUICK_HASH_BYTES, size - _QUICK_HASH_BYTES))
            digest.update(file.read())
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------- recorded paths
def record_path(path: Optional[str], directory: Union[str, os.PathLike]) -> tuple[Optional[str], bool]:
    """`(value to record, whether it is relative to the index folder)` for a model or data path of the index in
    `directory`: relative (`"../fine-tuned"`) when `path` is an existing local path under the index folder's parent,
    absolute when it is one elsewhere, as given otherwise (a Hub id)."""
    if path is None or not os.path.exists(path):
        return path, False
    index_dir = Path(os.path.abspath(directory))
    target = Path(os.path.abspath(path))
    if not target.is_relative_to(index_dir.parent):
        return str(target), False
    return os.path.relpath(target, index_dir), True


def resolve_recorded_path(value: Optional[str], directory: Union[str, os.PathLike], relative: bool) -> Optional[str]:
    """The inverse of [`record_path`]: a recorded relative path joined to the index folder `directory`."""
    if value is None or not relative:
        return value
    return os.path.normpath(os.path.join(os.path.abspath(directory), value))


# ------------------------------------------------------------------------------------------- writing, reading
def write_error(error: BaseException, directory: Union[str, os.PathLike]) -> IndexWriteError:
    """One line for a failed write into `directory` (an `OSError`, or FAISS's `RuntimeError` holding the errno)."""
    if isinstance(error, OSError):
        code, reason = error.errno, error.strerror or str(error)
    else:  # FAISS: "Error in ... failed: write error in <file>: 65491 != 256000 (No space left on device)"
        found = re.search(r"\(([^()]+)\)\s*$", str(error))
        reason = found.group(1) if found else "the write failed"
        code = _ERRNO_BY_TEXT.get(reason, errno.EIO)
    fix = "free some space or choose another folder" if code in _FULL else "choose another folder"
    return IndexWriteError(
        code or errno.EIO,
        f"cannot write the gallery index to {directory}: {reason}. Nothing was changed there: {fix} and run again",
    )


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_ERRNO_BY_TEXT = {os.strerror(code): code for code in errno.errorcode}


def recover(directory: Union[str, os.PathLike]) -> None:
    """Repairs what a crash during a save left beside `directory` (call holding its lock) and says what was done."""
    for done in recover_folder(directory):
        logger.warning("Gallery index %s: %s.", directory, done)


def _has_leftovers(directory: Path) -> bool:
    """Whether an interrupted save left `.NAME.old-*` / `.NAME.tmp-*` beside `directory` (then a read repairs it)."""
    parent = directory.parent
    if not parent.is_dir():
        return False
    return any(
        entry.name.startswith((f".{directory.name}.old-", f".{directory.name}.tmp-")) for entry in parent.iterdir()
    )


def load_index(directory: Union[str, os.PathLike], *, mmap: bool = False, verify: bool = False):
    """The index saved in `directory`, of whichever backend its config records (see [`GalleryIndex.load`]).

    Reading takes no lock and writes nothing, unless a crash during a save left the index aside: then it is put back
    first (under the folder's write lock), with a log line saying so.

    Raises:
        `FileNotFoundError`: no index in `directory`.
        [`CorruptIndexError`]: a missing, damaged, edited or inconsistent file.
    """
    directory = Path(directory)
    config_path = directory / CONFIG_NAME
    if not config_path.is_file() and _has_leftovers(directory):
        try:
            with folder_lock(directory):
                recover(directory)
        except OSError:
            pass  # another writer is busy, or a read-only place: report what is there
    if not config_path.is_file():
        backups = sorted(directory.parent.glob(f".{directory.name}.old-*"))
        what = f"no {CONFIG_NAME} in it" if directory.exists() else "the folder does not exist"
        hint = (
            f" A save was interrupted; the previous index is in {backups[-1]}: rename it to {directory}."
            if backups and not directory.exists()
            else " Build one with `lareid index` (or `GalleryIndex(...).add(...)` and `save(directory)`)."
        )
        raise FileNotFoundError(f"No gallery index in {directory} ({what}).{hint}")
    config = read_config(config_path)
    backend = config.get("backend", "faiss")
    if backend not in BACKENDS:  # the backend's module registers it on import (`hf_lareid.retrieval` imports both)
        raise CorruptIndexError(f"{config_path} names the backend {backend!r}, which is not loaded.")
    return BACKENDS[backend].open(directory, config, mmap=mmap, verify=verify)
