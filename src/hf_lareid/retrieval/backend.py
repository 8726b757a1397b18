"""What every gallery index backend provides (`GalleryBackend`), and the record the backends share.

A backend stores unit-norm embeddings with per-image metadata (person id, camera id, path, time added) and answers
top-k cosine searches. The FAISS index ([`GalleryIndex`], `faiss_index.py`) and the Qdrant index
([`QdrantGalleryIndex`], `qdrant_index.py`) are siblings: each implements the abstract methods below, and both inherit
the same record of where their vectors come from (the model's reference and fingerprint, the embedding settings, the
verification threshold and its calibration, the data folder) with the checks made against it at search time, the
same input checks, and the same config fields on disk (`storage.py`).
"""

from __future__ import annotations

import abc
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Optional, Union

import numpy as np

from ..embedding.provenance import Provenance
from ..evaluation.threshold import ThresholdCalibration, resolve_verification
from ..utils.errors import InvalidInputError
from ..utils.io import folder_lock
from . import retention
from .storage import (
    CONFIG_NAME,
    FORMAT_VERSION,
    RELATIVE_PATHS_KEY,
    CorruptIndexError,
    check_index_target,
    load_index,
    record_path,
    recover,
    resolve_recorded_path,
)

logger = logging.getLogger(__name__)

METADATA_FIELDS = ("person_ids", "camera_ids", "paths")
ADDED_AT = "added_at"  # UTC POSIX seconds (float64) of each entry's add; NaN = not recorded
_RECORDED_PATHS = ("model_reference", "data_dir")  # the fields that may be stored relative to the index folder


class FingerprintMismatchError(InvalidInputError):
    """Query embeddings come from a different model than the gallery embeddings."""


class EmbeddingSettingsMismatchError(FingerprintMismatchError):
    """Query embeddings were made with other settings (flip, image processor) than the gallery embeddings."""


@dataclass
class SearchResult:
    """Top-k hits of [`GalleryIndex.search`], one row per query.

    Attributes:
        scores (`np.ndarray` of shape `(num_queries, k)`, float32): cosine similarities, best first.
        indices (`np.ndarray` of shape `(num_queries, k)`, int64): positions of the hits in the index.
        person_ids (`np.ndarray` of shape `(num_queries, k)`, *optional*): person ids of the hits.
        camera_ids (`np.ndarray` of shape `(num_queries, k)`, *optional*): camera ids of the hits.
        paths (`list[list[str]]`, *optional*): image paths of the hits.
        same_person (`np.ndarray` of shape `(num_queries, k)`, bool, *optional*): `scores > verification_threshold`,
            when the index has a threshold.
    """

    scores: np.ndarray
    indices: np.ndarray
    person_ids: Optional[np.ndarray] = None
    camera_ids: Optional[np.ndarray] = None
    paths: Optional[list[list[str]]] = None
    same_person: Optional[np.ndarray] = None


class GalleryBackend(abc.ABC):
    """The contract of a gallery index backend and the record every backend keeps.

    A backend implements `__len__`, [`add`], [`add_batches`], [`search`], [`remove`], [`save`], [`open`] (the
    inverse of `save`, called by `load_index`), `indexed_paths` and `_field` (a metadata column). The arguments below
    are those of every backend (see [`GalleryIndex`] for their meaning); `index_type` names the backend's kind of
    index.
    """

    backend: ClassVar[str]  # what the saved config records as "backend"
    filters_in_database: ClassVar[bool] = False  # whether `search` takes the same-camera rule as a database filter

    def __init__(
        self,
        dim: int,
        index_type: str,
        *,
        model_reference: Optional[str] = None,
        model_fingerprint: Optional[str] = None,
        verification_threshold: Optional[float] = None,
        verification_calibration: Union[None, dict, ThresholdCalibration] = None,
        embedding_settings: Optional[dict] = None,
        runtime_settings: Optional[dict] = None,
        data_dir: Optional[Union[str, os.PathLike]] = None,
        dataset: Optional[str] = None,
        norm_tolerance: float = 1e-3,
        clock: Optional[Callable[[], datetime]] = None,
    ):
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise InvalidInputError(f"`dim` must be a positive integer, got {dim!r}.")
        if not (isinstance(norm_tolerance, (int, float)) and 0 < norm_tolerance < 1):
            raise InvalidInputError(f"`norm_tolerance` must be a number in (0, 1), got {norm_tolerance!r}.")
        self.dim = int(dim)
        self.index_type = index_type
        self.settings: dict = {}
        self.model_reference = model_reference
        self.model_fingerprint = model_fingerprint
        self.verification_threshold, self.verification_calibration = resolve_verification(
            verification_threshold, verification_calibration
        )
        self.embedding_settings = json_round_trip(embedding_settings)
        self.runtime_settings = json_round_trip(runtime_settings)
        self.data_dir = None if data_dir is None else str(data_dir)
        self.dataset = dataset
        self.norm_tolerance = float(norm_tolerance)
        self.clock = clock
        self._metadata_fields: Optional[tuple[str, ...]] = None  # fixed by the first add

    # ------------------------------------------------------------------------------------------- the contract
    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def _field(self, name: str) -> Optional[np.ndarray]:
        """The `(len(self),)` metadata column `name` (or `"added_at"`), `None` when not stored."""

    @property
    @abc.abstractmethod
    def indexed_paths(self) -> set[str]:
        """The set of image paths already in the index (empty without paths)."""

    @abc.abstractmethod
    def _append(
        self, embeddings: np.ndarray, fields: tuple[str, ...], columns: dict[str, np.ndarray], added_at: float
    ) -> None:
        """Stores checked unit-norm `embeddings` `(n, dim)` float32 (n may be 0) with their metadata `columns`
        (`{name: (n,) column}` of the `fields` given, as `_metadata_columns` returns them) and the UTC timestamp
        `added_at`. The first add fixes the index's metadata fields to `fields`; a failed call changes nothing."""

    @abc.abstractmethod
    def add_batches(self, batches: Iterable[Any], **options) -> int:
        """Adds a stream of batches, skipping paths already indexed; returns the number added."""

    @abc.abstractmethod
    def search(self, queries: Any, k: int = 10, **options) -> SearchResult:
        """The `k` most similar gallery images of each query `(num_queries, dim)`."""

    @abc.abstractmethod
    def remove(self, **criteria: Any) -> int:
        """Removes the entries matching every given criterion (`person_ids`, `paths`, `camera_ids`, `older_than`);
        returns how many."""

    @abc.abstractmethod
    def save(self, directory: Union[str, os.PathLike]) -> None:
        """Writes the index into `directory` (refusing a path that is not a gallery index)."""

    @classmethod
    @abc.abstractmethod
    def open(cls, directory: Path, config: dict, *, mmap: bool = False, verify: bool = False) -> GalleryBackend:
        """The index saved in `directory`, whose config `storage.read_config` has checked."""

    # ------------------------------------------------------------------------------------------- metadata
    @property
    def person_ids(self) -> Optional[np.ndarray]:
        """`(len(self),)` int64 person ids, or `None` if none were given."""
        return self._field("person_ids")

    @property
    def camera_ids(self) -> Optional[np.ndarray]:
        """`(len(self),)` int64 camera ids, or `None` if none were given."""
        return self._field("camera_ids")

    @property
    def paths(self) -> Optional[list[str]]:
        """Image paths, or `None` if none were given."""
        paths = self._field("paths")
        return None if paths is None else paths.tolist()

    @property
    def added_at(self) -> np.ndarray:
        """`(len(self),)` float64 UTC POSIX seconds at which each entry was added (NaN: saved before it was recorded)."""
        values = self._field(ADDED_AT)
        return np.full(len(self), np.nan) if values is None else values

    def resolve_path(self, path: str) -> str:
        """`path` as stored (relative to [`data_dir`] or absolute) -> a path to open: joined to `data_dir` if relative.

        Example:
            ```python
            >>> from hf_lareid.retrieval import GalleryIndex
            >>> GalleryIndex(8, data_dir="/data/Market").resolve_path("bounding_box_test/0001_c1s1_001051_00.jpg")
            '/data/Market/bounding_box_test/0001_c1s1_001051_00.jpg'
            ```
        """
        if not path or self.data_dir is None or os.path.isabs(path):
            return path
        return os.path.join(self.data_dir, path)

    def unindexed(self, paths: Iterable[str]) -> np.ndarray:
        """`(len(paths),)` bool: True where a path is not in the index yet (paths compared resolved against `data_dir`,
        so an index of relative paths recognises the same images given as absolute paths, and the reverse)."""
        indexed = self.indexed_paths
        held = indexed | {self.resolve_path(path) for path in indexed}
        paths = list(paths)
        return np.fromiter(
            (path not in held and self.resolve_path(path) not in held for path in paths), bool, len(paths)
        )

    def set_verification_calibration(self, calibration: Union[ThresholdCalibration, dict]) -> None:
        """Stores a `ThresholdCalibration` (or its `to_dict()`) and its threshold; saved with the index."""
        self.verification_threshold, self.verification_calibration = resolve_verification(None, calibration)

    def set_verification_threshold(self, threshold: Optional[float]) -> None:
        """Sets a same-person threshold by hand (a cosine similarity in [-1, 1], or `None`), dropping any calibration."""
        self.verification_threshold, self.verification_calibration = resolve_verification(threshold, None)

    # ------------------------------------------------------------------------------------------- checks
    def _now(self) -> datetime:
        now = (self.clock or retention.utc_now)()
        return now if now.tzinfo else now.replace(tzinfo=timezone.utc)

    def _check_embeddings(self, embeddings: Any, name: str) -> np.ndarray:
        """`(n, dim)` float32 C-contiguous unit-norm rows, or a `ValueError` naming `name` and the fix."""
        array = np.asarray(embeddings.detach().cpu().float() if hasattr(embeddings, "detach") else embeddings)
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != self.dim:
            raise InvalidInputError(
                f"`{name}` must have shape (n, {self.dim}) to match the index dimension {self.dim}, got shape "
                f"{tuple(array.shape)}: were they produced by the same model?"
            )
        array = np.ascontiguousarray(array, dtype=np.float32)
        if not np.isfinite(array).all():
            raise InvalidInputError(f"`{name}` contains NaN or infinite values; check the feature extraction.")
        norms = np.linalg.norm(array, axis=1)
        if array.size and np.abs(norms - 1.0).max() > self.norm_tolerance:
            worst = int(np.abs(norms - 1.0).argmax())
            raise InvalidInputError(
                f"`{name}` must be unit-norm (row {worst} has norm {norms[worst]:.4f}): normalise them first, e.g. "
                "`x / np.linalg.norm(x, axis=1, keepdims=True)`."
            )
        return array

    def add(
        self,
        embeddings: Any,
        person_ids: Optional[Sequence[int]] = None,
        camera_ids: Optional[Sequence[int]] = None,
        paths: Optional[Sequence[str]] = None,
    ) -> None:
        """Adds unit-norm embeddings `(n, dim)` with optional per-image metadata (each of length n), recorded as added
        now (by the index's `clock`).

        Every call must give the same metadata fields as the first one; a call that fails changes nothing. An
        untrained FAISS `"ivf"`/`"ivfpq"` index is first trained on these embeddings.
        """
        array = self._check_embeddings(embeddings, "embeddings")
        fields, columns = self._metadata_columns(len(array), person_ids, camera_ids, paths)
        self._append(array, fields, columns, self._now().timestamp())

    def _metadata_columns(
        self,
        num: int,
        person_ids: Optional[Sequence[int]],
        camera_ids: Optional[Sequence[int]],
        paths: Optional[Sequence[str]],
    ) -> tuple[tuple[str, ...], dict[str, np.ndarray]]:
        """`(given field names, {name: (num,) int64 / str column})` of one add, checked against the first add's fields."""
        metadata = {"person_ids": person_ids, "camera_ids": camera_ids, "paths": paths}
        given = tuple(name for name in METADATA_FIELDS if metadata[name] is not None)
        if self._metadata_fields is not None and given != self._metadata_fields:
            raise InvalidInputError(
                f"This index stores the metadata fields {list(self._metadata_fields)}, but this call gives "
                f"{list(given)}: give the same fields every time."
            )
        columns = {}
        for name in given:
            values = metadata[name]
            try:
                column = np.asarray([str(v) for v in values]) if name == "paths" else np.asarray(values, dtype=np.int64)
            except (TypeError, ValueError) as error:
                raise InvalidInputError(
                    f"`{name}` must be a sequence of {'strings' if name == 'paths' else 'integers'}: {error}"
                ) from error
            if column.shape != (num,):
                raise InvalidInputError(f"`{name}` has {len(column)} entries for {num} embeddings: they must match.")
            columns[name] = column
        return given, columns

    @property
    def provenance(self) -> Provenance:
        """How the gallery embeddings were made, as recorded (`None` fields were not recorded)."""
        return Provenance.from_index_fields(self.model_fingerprint, self.embedding_settings, self.runtime_settings)

    def check_provenance(self, provenance: Provenance) -> None:
        """
        Compares how queries are embedded (`ReIDEncoder.provenance`) with how the gallery was, by
        [`Provenance.mismatches`]: raises [`FingerprintMismatchError`] for another model, and
        [`EmbeddingSettingsMismatchError`] for other embedding settings (model config, flip, image processor); logs a
        warning for another runtime (bf16, runtime). Settings not recorded are not checked.
        """
        found = self.provenance.mismatches(provenance)
        if "model_fingerprint" in found:
            raise FingerprintMismatchError(
                f"The query model's fingerprint {provenance.model_fingerprint!r} differs from the one that built this "
                f"gallery index ({self.model_fingerprint!r}, model {self.model_reference!r}): embeddings of different "
                "models are not comparable. Use the same model or rebuild the index."
            )
        if "embedding" in found:
            raise EmbeddingSettingsMismatchError(
                f"These embeddings are made with other settings than the gallery index's ({found['embedding']}): embed "
                "them the way the index was built (the same model config, --flip and image processor) or build a new "
                "index."
            )
        if "runtime" in found:
            logger.warning(
                "The query embeddings come from another runtime than the gallery's (%s): similarities may differ "
                "slightly (bf16 vs fp32: cosine ~0.9999).",
                found["runtime"],
            )

    def check_fingerprint(self, model_fingerprint: Optional[str]) -> None:
        """Raises [`FingerprintMismatchError`] if `model_fingerprint` differs from the gallery model's."""
        self.check_provenance(Provenance(model_fingerprint=model_fingerprint))

    def check_embedding_settings(
        self, embedding_settings: Optional[dict] = None, runtime_settings: Optional[dict] = None
    ) -> None:
        """
        Raises [`EmbeddingSettingsMismatchError`] if `embedding_settings` (flip, image processor) differ from the
        gallery's; logs a warning if `runtime_settings` (bf16, runtime) differ. Settings not recorded are not checked.
        """
        self.check_provenance(Provenance.from_index_fields(None, embedding_settings, runtime_settings))

    def _checked_queries(self, queries: Any, k: int, provenance: Optional[Provenance]) -> np.ndarray:
        """`(num_queries, dim)` float32 queries, after the provenance (when given), non-empty index and `k` checks."""
        if provenance is not None:
            self.check_provenance(provenance)
        if len(self) == 0:
            raise InvalidInputError("The gallery index is empty: add embeddings first (`add` or `add_batches`).")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidInputError(f"`k` must be a positive integer, got {k!r}.")
        return self._check_embeddings(queries, "queries")

    # ------------------------------------------------------------------------------------------- the record on disk
    def _config(self, directory: Union[str, os.PathLike]) -> dict:
        """The content of `gallery_config.json` of a save into `directory`, except the checksums: the one place that
        lists what a saved index records. Model and data paths in the same tree as the index are stored relative."""
        threshold, calibration = resolve_verification(self.verification_threshold, self.verification_calibration)
        config = {
            "format_version": FORMAT_VERSION,
            "backend": self.backend,
            "dim": self.dim,
            "index_type": self.index_type,
            "size": len(self),
            "settings": self.settings,
            "model_fingerprint": self.model_fingerprint,
            "verification_threshold": threshold,
            "verification_calibration": calibration,
            "embedding_settings": self.embedding_settings,
            "runtime_settings": self.runtime_settings,
            "dataset": self.dataset,
            "norm_tolerance": self.norm_tolerance,
            "metadata_fields": list(self._metadata_fields or ()),
        }
        relative = []
        for name in _RECORDED_PATHS:
            config[name], is_relative = record_path(getattr(self, name), directory)
            if is_relative:
                relative.append(name)
        config[RELATIVE_PATHS_KEY] = relative
        return config

    @classmethod
    def _from_config(cls, directory: Path, config: dict, **backend_options) -> GalleryBackend:
        """An empty index with the record of a config read by `storage.read_config` from `directory`."""
        relative = config.get(RELATIVE_PATHS_KEY) or ()
        model_reference, data_dir = (
            resolve_recorded_path(config.get(name), directory, name in relative) for name in _RECORDED_PATHS
        )
        try:
            index = cls(
                config["dim"],
                config["index_type"],
                model_reference=model_reference,
                model_fingerprint=config.get("model_fingerprint"),
                verification_threshold=config.get("verification_threshold"),
                verification_calibration=config.get("verification_calibration"),
                embedding_settings=config.get("embedding_settings"),
                runtime_settings=config.get("runtime_settings"),
                data_dir=data_dir,
                dataset=config.get("dataset"),
                norm_tolerance=config.get("norm_tolerance", 1e-3),
                **backend_options,
            )
        except ValueError as error:
            raise CorruptIndexError(
                f"{Path(directory) / CONFIG_NAME} holds an invalid setting: {error} Rebuild the index."
            ) from error
        index.settings.update(config["settings"])
        index._metadata_fields = tuple(config["metadata_fields"])
        return index

    @classmethod
    def load(cls, directory: Union[str, os.PathLike], *, mmap: bool = False, verify: bool = False) -> GalleryBackend:
        """Loads an index written by `save`, of whichever backend its config records (see [`GalleryIndex.load`])."""
        return load_index(directory, mmap=mmap, verify=verify)

    @classmethod
    def load_or_create(cls, directory: Union[str, os.PathLike], dim: int, **kwargs) -> GalleryBackend:
        """Loads the index (e.g. a checkpoint) in `directory` if there is one, else creates `cls(dim, **kwargs)`.

        A loaded index must be of this backend and match `dim`, `index_type`, `model_fingerprint`,
        `embedding_settings` and `data_dir` when given. A path that exists and is not an index is refused
        (`FileExistsError`) before any work is done.
        """
        check_index_target(directory)
        with folder_lock(directory):
            recover(directory)
        if not (Path(directory) / CONFIG_NAME).is_file():
            return cls(dim, **kwargs)
        index = load_index(directory)
        if not isinstance(index, cls):
            raise InvalidInputError(
                f"The index in {directory} is a {index.backend} index, not a {cls.backend} one: use another directory "
                f"for a {cls.backend} index."
            )
        index_type = kwargs.get("index_type", index.index_type)
        if index.dim != dim or index.index_type != index_type:
            raise InvalidInputError(
                f"The index in {directory} has dim={index.dim}, index_type={index.index_type!r}, not dim={dim}, "
                f"index_type={kwargs.get('index_type')!r}: use another directory or delete it."
            )
        index.check_fingerprint(kwargs.get("model_fingerprint"))
        data_dir = kwargs.get("data_dir")
        if data_dir is not None and index.data_dir is not None and not _same_path(data_dir, index.data_dir):
            raise InvalidInputError(
                f"The index in {directory} holds images of {index.data_dir}, not {data_dir}: its paths are relative "
                "to that folder. Use another directory for this data folder."
            )
        if index.data_dir is None and data_dir is not None:  # an index saved before data_dir was recorded
            index.data_dir = str(data_dir)
        if index.dataset is None:  # an index saved before the dataset was recorded
            index.dataset = kwargs.get("dataset")
        index.check_embedding_settings(kwargs.get("embedding_settings"), kwargs.get("runtime_settings"))
        for name in ("embedding_settings", "runtime_settings"):  # an index saved without them records them now
            if getattr(index, name) is None and kwargs.get(name) is not None:
                setattr(index, name, json_round_trip(kwargs[name]))
        logger.info("Resuming the gallery index in %s (%d images).", directory, len(index))
        return index


def _same_path(first: Union[str, os.PathLike], second: Union[str, os.PathLike]) -> bool:
    return os.path.realpath(os.path.expanduser(first)) == os.path.realpath(os.path.expanduser(second))


def json_round_trip(value: Optional[dict]) -> Optional[dict]:
    """`value` as it reads back from JSON (tuples become lists), so recorded and fresh settings compare equal."""
    return None if value is None else json.loads(json.dumps(value, sort_keys=True, default=str))


def select(values: Any, keep: np.ndarray) -> Any:
    """`values` (an array or a sequence) at the positions where `keep` is True."""
    if values is None:
        return None
    if isinstance(values, np.ndarray):
        return values[keep]
    return [value for value, kept in zip(values, keep) if kept]


def parse_batch(batch: Any) -> tuple[np.ndarray, dict]:
    """`(embeddings, {"person_ids": ..., "camera_ids": ..., "paths": ...})` from any supported batch form."""
    if hasattr(batch, "embeddings"):
        embeddings, metadata = batch.embeddings, {name: getattr(batch, name, None) for name in METADATA_FIELDS}
    elif isinstance(batch, dict):
        if "embeddings" not in batch:
            raise InvalidInputError(f"A batch dict needs an 'embeddings' key, got keys {sorted(batch)}.")
        embeddings, metadata = batch["embeddings"], {name: batch.get(name) for name in METADATA_FIELDS}
    elif isinstance(batch, tuple) and len(batch) == 2 and isinstance(batch[1], dict):
        embeddings, metadata = batch[0], {name: batch[1].get(name) for name in METADATA_FIELDS}
    else:
        embeddings, metadata = batch, {}
    if hasattr(embeddings, "detach"):
        embeddings = embeddings.detach().cpu().float().numpy()
    metadata = {name: values for name, values in metadata.items() if values is not None}
    if "paths" in metadata and len(metadata["paths"]) == 0:  # e.g. a FeatureSet without paths
        del metadata["paths"]
    return np.asarray(embeddings), metadata
