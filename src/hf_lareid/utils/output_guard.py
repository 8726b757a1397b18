"""Claim output paths before work: a command replaces only files it can recognise as its own.

Every folder that hf_lareid writes into gets a small manifest, `.lareid-manifest.json`, listing the entries it wrote
there: a file with its size and SHA-256, a folder by name. Before a command starts its work it claims every path it
will write ([`claim_outputs`]): a path that exists and is not listed in its folder's manifest (the user's
`README.md`, `config.json`, a photo, a model trained elsewhere), or a listed file whose bytes changed since, is
refused with one line ([`ForeignFileError`]) and nothing is written. Paths that do not exist yet are recorded as
claimed before the work starts, so a run killed half-way can be re-run over what it left; when the block ends, the
manifest records what is there (hashes for files, names for folders) and drops claims that were never written.

A claimed folder (the demo's `fine-tuned/`, a converted checkpoint) is recorded by name in its parent's manifest; an
empty folder holds nothing to lose and may always be claimed.

Example:

```python
>>> from pathlib import Path
>>> from hf_lareid.utils.output_guard import claim_outputs
>>> def write_metrics(folder):
...     with claim_outputs([f"{folder}/metrics.json"], fix="choose another --output_dir"):
...         Path(folder).mkdir(exist_ok=True)
...         Path(folder, "metrics.json").write_text("{}")
>>> write_metrics("out")
>>> write_metrics("out")  # a second run over its own output is accepted
>>> Path("mine").mkdir()
>>> _ = Path("mine/metrics.json").write_text("the user's own")
>>> write_metrics("mine")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
hf_lareid.utils.output_guard.ForeignFileError: .../mine/metrics.json exists and is not a file hf-lareid wrote: ...
```
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Union

from .errors import LAReIDError
from .io import atomic_write_text, file_sha256

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
MANIFEST_NAME = ".lareid-manifest.json"
_FORMAT_VERSION = 1
_FOLDER = "folder"

__all__ = [
    "MANIFEST_NAME",
    "ForeignFileError",
    "check_outputs",
    "claim_outputs",
    "foreign_outputs",
]


class ForeignFileError(LAReIDError, FileExistsError):
    """A path a command would write holds something hf_lareid did not write; the message names it and the fix."""


def _absolute(path: PathLike) -> Path:
    return Path(os.path.abspath(Path(path).expanduser()))


def _read_manifest(folder: Path) -> dict[str, dict]:
    """The entries of `folder`'s manifest (`{}` when it has none or it cannot be read: nothing is ours then)."""
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    entries = manifest.get("entries") if isinstance(manifest, dict) else None
    return (
        {name: entry for name, entry in entries.items() if isinstance(entry, dict)} if isinstance(entries, dict) else {}
    )


def _write_manifest(folder: Path, entries: dict[str, dict]) -> None:
    text = json.dumps({"format_version": _FORMAT_VERSION, "written_by": "hf-lareid", "entries": entries}, indent=2)
    atomic_write_text(folder / MANIFEST_NAME, text + "\n")


def _is_ours(path: Path, entry: dict | None) -> bool:
    """Whether `path` (which exists) is what the manifest `entry` recorded: a claim not yet written, the same folder,
    or a file of the recorded size and SHA-256."""
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        return True  # an empty folder holds nothing to lose
    if entry is None:
        return False
    kind = entry.get("kind")
    if kind == "claimed":
        return True  # claimed before a run that was stopped before it recorded what it wrote
    if kind == _FOLDER:
        return path.is_dir() and not path.is_symlink()
    if not path.is_file() or path.is_symlink():
        return False
    try:
        return path.stat().st_size == entry.get("size") and file_sha256(path) == entry.get("sha256")
    except OSError:
        return False


def foreign_outputs(paths: Iterable[PathLike]) -> list[Path]:
    """The `paths` that exist (a dangling link counts) and were not written by hf_lareid, in the given order."""
    foreign, manifests = [], {}
    for path in map(_absolute, paths):
        if not (path.exists() or path.is_symlink()) or path.name == MANIFEST_NAME:
            continue
        folder = path.parent
        if folder not in manifests:
            manifests[folder] = _read_manifest(folder)
        if not _is_ours(path, manifests[folder].get(path.name)):
            foreign.append(path)
    return foreign


def check_outputs(paths: Iterable[PathLike], fix: str) -> None:
    """Raises [`ForeignFileError`] (one line: the first foreign path, how many, and `fix`) when any of `paths` exists
    and was not written by hf_lareid; returns quietly otherwise."""
    foreign = foreign_outputs(paths)
    if foreign:
        more = f" (and {len(foreign) - 1} more: {', '.join(p.name for p in foreign[1:4])})" if len(foreign) > 1 else ""
        what = (
            "is not empty, and hf-lareid did not write it" if foreign[0].is_dir() else "is not a file hf-lareid wrote"
        )
        raise ForeignFileError(
            f"{foreign[0]} exists and {what}{more}: it would be replaced, so nothing was done. Move it away, or {fix}."
        )


def _record(paths: Iterable[Path], claim_missing: bool) -> None:
    """Updates each parent folder's manifest: existing paths get their size and SHA-256 (files) or their name
    (folders); missing ones become claims (`claim_missing`) or are dropped."""
    by_folder: dict[Path, list[Path]] = {}
    for path in paths:
        by_folder.setdefault(path.parent, []).append(path)
    for folder, members in by_folder.items():
        entries = _read_manifest(folder)
        for path in members:
            if path.is_dir() and not path.is_symlink():
                entries[path.name] = {"kind": _FOLDER}
            elif path.is_file() and not path.is_symlink():
                entries[path.name] = {"kind": "file", "size": path.stat().st_size, "sha256": file_sha256(path)}
            elif claim_missing:
                entries[path.name] = {"kind": "claimed"}
            else:
                entries.pop(path.name, None)
        if entries or (folder / MANIFEST_NAME).exists():
            folder.mkdir(parents=True, exist_ok=True)
            _write_manifest(folder, entries)


@contextmanager
def claim_outputs(paths: Iterable[PathLike], fix: str) -> Iterator[list[Path]]:
    """
    Claims `paths` for the block: refuses ([`check_outputs`]) when one exists and is not hf_lareid's, before any
    work; records the missing ones as claimed; when the block ends (success or error), records what was written and
    drops the claims left unwritten. Yields the absolute paths.
    """
    claimed = [_absolute(path) for path in paths]
    check_outputs(claimed, fix)
    try:
        _record(claimed, claim_missing=True)
    except OSError as error:  # a full or read-only disk: name the output, not the manifest
        if error.errno is None or not claimed:
            raise
        raise OSError(error.errno, error.strerror, str(claimed[0])) from error
    try:
        yield claimed
    except BaseException:
        try:
            _record(claimed, claim_missing=False)
        except OSError as error:  # the work's own error (often the same full disk) is the one to report
            logger.debug("could not update the manifest after an error: %s", error)
        raise
    _record(claimed, claim_missing=False)
