"""The one place where hf_lareid writes files: atomically, with the user's normal file mode, and with a fault hook.

Three ways to write, one per kind of target:

- one file: [`atomic_write_bytes`] / [`atomic_write_text`], or [`atomic_path`] for writers that want a path
  (`faiss.write_index`, `savefig`, `np.savez`, an ONNX exporter). The data goes to a hidden temporary file in the
  same folder, is fsynced, then `os.replace`d onto the target: a reader sees the old file or the new one.
- a folder that one call writes whole (a gallery index, a converted checkpoint): [`atomic_folder`] writes into a
  temporary sibling `.NAME.tmp-<id>` and renames it into place; an existing folder is moved aside to
  `.NAME.old-<id>` just before and removed after. [`recover_folder`] repairs what a crash between the two
  renames left, and [`folder_lock`] keeps two writers apart.
- files inside an existing folder that holds other things too (a model or Trainer output folder, with its
  `checkpoint-*` and the user's own files): [`staged_replace`] stages the new files in a hidden folder beside
  their targets and `os.replace`s them one at a time, weights first and `config.json` last.

Files get the mode a plain `open(path, "w")` would give (0644 under umask 022), not `mkstemp`'s 0600.

Fault injection for tests: `HF_LAREID_FAULT="POINT[@N][=ACTION],..."` makes [`fault_point`] fail at the N-th time
(default: every time) this process reaches a named point matching the `fnmatch` pattern POINT. ACTION is `enospc`
(default: `OSError(errno.ENOSPC)`), `kill` (SIGKILL of this process, as a power cut) or `interrupt`
(`KeyboardInterrupt`, as Ctrl-C). Points: `write:<file name>` (a file is complete but not yet in place),
`replace:<file name>` (just before a staged file replaces its target), `swap:<folder name>` (between moving the old
folder aside and renaming the new one in) and `index:checkpoint` (after each checkpoint of a gallery index build).

Example:

```python
>>> from hf_lareid.utils.io import atomic_write_text, atomic_folder
>>> atomic_write_text("out/notes.txt", "hello\\n").name  # mode 0644 under umask 022
'notes.txt'
>>> with atomic_folder("out/export", replace_existing=True) as folder:
...     _ = (folder / "a.txt").write_text("written whole or not at all")
>>> sorted(path.name for path in Path("out").iterdir())  # the temporary folder is gone
['export', 'notes.txt']
```
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import logging
import os
import shutil
import signal
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Union

from .errors import InvalidInputError, LAReIDError

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
FAULT_ENV = "HF_LAREID_FAULT"
_TMP_TAG = ".tmp-"
_OLD_TAG = ".old-"
_STAGING_PREFIX = ".lareid-staging-"
_fault_counts: dict[str, int] = {}

__all__ = [
    "FAULT_ENV",
    "FolderBusyError",
    "atomic_folder",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "fault_point",
    "file_sha256",
    "folder_lock",
    "is_disk_full",
    "recover_folder",
    "staged_replace",
]


class FolderBusyError(LAReIDError, OSError):
    """Another process holds the write lock of a folder."""


# --------------------------------------------------------------------------------------------------- fault hook
def fault_point(point: str) -> None:
    """Fails here when `$HF_LAREID_FAULT` names `point` (see the module docstring); a no-op otherwise."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        pattern, _, action = entry.partition("=")
        pattern, _, nth = pattern.partition("@")
        if not fnmatch.fnmatchcase(point, pattern):
            continue
        _fault_counts[entry] = count = _fault_counts.get(entry, 0) + 1
        if nth and count != int(nth):
            continue
        action = action or "enospc"
        logger.debug("%s: fault %r at %s", FAULT_ENV, action, point)
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if action == "interrupt":
            raise KeyboardInterrupt(f"{FAULT_ENV} at {point}")
        if action == "enospc":
            raise OSError(errno.ENOSPC, f"No space left on device ({FAULT_ENV} at {point})")
        raise InvalidInputError(f"{FAULT_ENV}: unknown action {action!r} in {entry!r} (enospc, kill or interrupt).")


# ----------------------------------------------------------------------------------------------------- helpers
def is_disk_full(error: BaseException) -> bool:
    """Whether `error` says the disk (or the user's quota) is full: an `OSError` with errno ENOSPC / EDQUOT, or a
    library's own error carrying that text (safetensors raises `SafetensorError("I/O error: No space left ...")`)."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "No space left on device" in str(error) or "Disk quota exceeded" in str(error)


def file_sha256(path: PathLike) -> str:
    """The hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    """Flushes a file or a folder (its entries) to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            _fsync(Path(root) / name)
        _fsync(Path(root))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _hidden_sibling(path: Path, tag: str) -> Path:
    return path.parent / f".{path.name}{tag}{uuid.uuid4().hex[:12]}"


def _target(path: PathLike) -> Path:
    path = Path(os.path.abspath(Path(path).expanduser()))  # "." gets a name and a parent; symlinks stay
    if not path.name:
        raise InvalidInputError(f"cannot write to {str(path)!r}: it is a file-system root.")
    return path


# ------------------------------------------------------------------------------------------------- single files
@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """
    Yields a temporary path beside `path` for a writer to create; when the block succeeds the file is fsynced,
    given the user's normal mode and renamed onto `path` (its folder is created). On any error it is removed and
    `path` keeps its old content.
    """
    path = _target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _hidden_sibling(path, _TMP_TAG)
    try:
        yield temporary
        if not temporary.is_file():
            raise FileNotFoundError(f"the writer did not create {temporary}, so {path} was not written.")
        os.chmod(temporary, 0o666 & ~_umask())
        _fsync(temporary)
        fault_point(f"write:{path.name}")
        os.replace(temporary, path)
        _fsync(path.parent)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if error.errno is None or error.filename == str(path):
            raise
        # Name the file the user asked for, not the hidden temporary one (or none, as ENOSPC from write() does).
        raise OSError(error.errno, error.strerror, str(path)) from error
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Writes `data` to `path` atomically (see [`atomic_path`]); returns the absolute path."""
    with atomic_path(path) as temporary:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
    return _target(path)


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Writes `text` to `path` atomically (see [`atomic_path`]); returns the absolute path."""
    return atomic_write_bytes(path, text.encode(encoding))


def _umask() -> int:
    """The process umask, read without changing it where Linux reports it (setting it races with other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------------------------------------ whole folders
@contextmanager
def atomic_folder(path: PathLike, *, replace_existing: bool = False) -> Iterator[Path]:
    """
    Yields an empty temporary sibling folder of `path`; when the block succeeds, its files are fsynced and it is
    renamed to `path`.

    An existing `path` is refused (`FileExistsError`) unless `replace_existing`: the CALLER checks first that the
    package wrote it. It is then moved aside to `.NAME.old-<id>` just before the rename and deleted after it, or
    moved back if the rename fails. A crash between the two renames leaves it aside: [`recover_folder`] puts it
    back. On any error the temporary folder is removed and `path` is as it was.
    """
    path = _target(path)
    if path.exists() and not replace_existing:
        raise FileExistsError(f"{path} exists: choose a new folder.")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _hidden_sibling(path, _TMP_TAG)
    os.mkdir(temporary)  # mode 0777 & ~umask, not mkdtemp's 0700
    backup = None
    try:
        yield temporary
        _fsync_tree(temporary)
        if path.exists() or path.is_symlink():
            backup = _hidden_sibling(path, _OLD_TAG)
            os.rename(path, backup)
        fault_point(f"swap:{path.name}")
        os.rename(temporary, path)
        _fsync(path.parent)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        if backup is not None and backup.exists() and not path.exists():
            try:
                os.rename(backup, path)
            except OSError as error:
                logger.error("could not move %s back to %s (%s): rename it yourself.", backup, path, error)
        raise
    if backup is not None:
        _remove(backup)


def recover_folder(path: PathLike) -> list[str]:
    """
    Repairs what an interrupted [`atomic_folder`] left beside `path`; returns one sentence per thing done.

    If `path` is missing and a `.NAME.old-*` copy exists (a crash between the two renames), the newest copy is
    renamed back. Other `.NAME.old-*` and `.NAME.tmp-*` leftovers are removed. Call it holding [`folder_lock`].
    """
    path = _target(path)
    if not path.parent.is_dir():
        return []
    leftovers = [entry for entry in path.parent.iterdir() if entry.name.startswith(f".{path.name}.")]
    backups = sorted(
        (e for e in leftovers if e.name.startswith(f".{path.name}{_OLD_TAG}")), key=lambda e: e.stat().st_mtime
    )
    done = []
    if backups and not path.exists():
        newest = backups.pop()
        os.rename(newest, path)
        done.append(f"restored {path} from {newest.name}, left by an interrupted save")
    for entry in leftovers:
        if entry.exists() and (entry in backups or entry.name.startswith(f".{path.name}{_TMP_TAG}")):
            _remove(entry)
            done.append(f"removed {entry.name}, left by an interrupted save")
    if done:
        _fsync(path.parent)
    return done


_held_locks: dict[str, object] = {}


@contextmanager
def folder_lock(path: PathLike, *, wait: bool = False) -> Iterator[Path]:
    """
    Holds the write lock of folder `path` (the file `.NAME.lock` beside it) for the block; yields the lock file.

    Another process holding it raises [`FolderBusyError`] at once (or, with `wait`, blocks until it is free).
    The lock is re-entrant within one process, so a function that locks can call another that locks.
    """
    from filelock import FileLock, Timeout

    path = _target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_file = path.parent / f".{path.name}.lock"
    lock = _held_locks.setdefault(str(lock_file), FileLock(str(lock_file), mode=0o666 & ~_umask()))
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        raise FolderBusyError(
            errno.EBUSY,
            f"another process is writing {path} (it holds {lock_file}): wait for it to finish, or use another folder",
        ) from None
    try:
        yield lock_file
    finally:
        lock.release()


# ------------------------------------------------------------------------------------- files in a shared folder
@contextmanager
def staged_replace(directory: PathLike, last: Sequence[str] = ("config.json",)) -> Iterator[Path]:
    """
    Yields a hidden staging folder inside `directory`; when the block succeeds, every file written there replaces
    its namesake in `directory` with one `os.replace` each, the names in `last` at the end and in that order
    (weights before `config.json`). Files of `directory` that were not staged (checkpoints, the user's own files)
    are never touched. On any error before the first replace nothing in `directory` changes; a crash between
    replaces leaves new weights beside the old config, which the weights SHA-256 recorded in the config detects.
    """
    directory = _target(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.glob(f"{_STAGING_PREFIX}*"):
        logger.info("removing %s, left by an interrupted save", leftover)
        _remove(leftover)
    staging = directory / f"{_STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    os.mkdir(staging)
    try:
        yield staging
        names = sorted(entry.name for entry in staging.iterdir())
        if any((staging / name).is_dir() for name in names):
            raise IsADirectoryError(f"staged_replace stages files only; {staging} holds a folder.")
        names = [n for n in names if n not in last] + [n for n in last if n in names]
        for name in names:
            os.chmod(staging / name, 0o666 & ~_umask())
            _fsync(staging / name)
            fault_point(f"write:{name}")
        for name in names:
            fault_point(f"replace:{name}")
            os.replace(staging / name, directory / name)
        _fsync(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
