"""`GalleryIndex`: search a gallery of unit-norm embeddings with FAISS, with metadata, a model fingerprint and atomic saves.

The index knows no model: it stores embeddings, per-image metadata (person id, camera id, path), the reference
(path or Hub repo id) and fingerprint string of the model that produced the embeddings, and optionally a
verification threshold (same person when `cosine similarity > threshold`).

On disk (`save(directory)`): `gallery_config.json` (settings, counts, SHA-256 of the other files and of the config
itself), `index.faiss` (`faiss.write_index`) and `metadata.npz` (plain arrays, loaded without pickle). A save
never replaces a path that is not a gallery index, holds the folder's write lock (`.NAME.lock` beside it), and
the next open repairs what a crash during a save left (see `hf_lareid.file_utils`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional, Union

import faiss
import numpy as np
from tqdm.auto import tqdm

from ..errors import DamagedFileError, InvalidInputError
from ..file_utils import atomic_folder, fault_point, file_sha256, folder_lock, recover_folder

logger = logging.getLogger(__name__)

# The public names are listed once, in `hf_lareid.retrieval.__all__`.

INDEX_TYPES = ("flat", "ivf", "ivfpq", "ivfpq_refine", "hnsw")
_IVF_TYPES = ("ivf", "ivfpq", "ivfpq_refine")
_FORMAT_VERSION = 2  # 2: the config carries its own SHA-256 and the embedding settings
_CONFIG_NAME = "gallery_config.json"
_INDEX_NAME = "index.faiss"
_METADATA_NAME = "metadata.npz"
_DATA_FILES = (_INDEX_NAME, _METADATA_NAME)
# What a saved index of each backend holds beside its config, and which of those files the config checksums. A
# "qdrant" index (`retrieval/qdrant_store.py`) keeps its vectors in Qdrant; in embedded mode its storage folder.
QDRANT_STORAGE_NAME = "qdrant_storage"
_BACKEND_ENTRIES = {"faiss": _DATA_FILES, "qdrant": (QDRANT_STORAGE_NAME,)}
_BACKEND_CHECKSUMMED = {"faiss": _DATA_FILES, "qdrant": ()}
_CONFIG_SHA256_KEY = "config_sha256"  # SHA-256 of the canonical JSON of every other config field
_METADATA_FIELDS = ("person_ids", "camera_ids", "paths")
_ADDED_AT = "added_at"  # metadata.npz array: UTC POSIX seconds (float64) of each entry's add; NaN = not recorded
_QUICK_HASH_BYTES = 1 << 20  # the quick hash covers the first and the last MiB of a data file
# Config fields every saved index has; `_config` writes them, `_read_config` requires them.
_REQUIRED_CONFIG_FIELDS = ("format_version", "dim", "index_type", "size", "settings", "metadata_fields", "sha256")


class CorruptIndexError(DamagedFileError, ValueError):
    """A saved gallery index is incomplete, damaged or of an unknown format."""


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


def _default_pq_m(dim: int) -> int:
    """Largest divisor of `dim` giving sub-vectors of at least 8 dimensions (e.g. 96 for 768)."""
    return max(m for m in range(1, max(1, dim // 8) + 1) if dim % m == 0)


class GalleryIndex:
    """A searchable gallery of unit-norm embeddings with metadata, over FAISS (inner product = cosine similarity).

    Args:
        dim (`int`): embedding width.
        index_type (`str`, *optional*, defaults to `"flat"`): `"flat"` (exact, `IndexFlatIP`), `"ivf"` (inverted
            lists), `"ivfpq"` (inverted lists + product quantisation: smallest, low recall), `"ivfpq_refine"`
            (inverted lists + 4-bit fast-scan PQ, re-ranked with an int8 copy: the compressed index that finds the
            neighbours) or `"hnsw"` (graph). The inverted-list types are trained from a sample: [`train`], or the
            first call to [`add`] / [`add_batches`].
        nlist (`int`, *optional*): inverted lists of the inverted-list types; defaults to `4 * sqrt(training size)`.
        nprobe (`int`, *optional*, defaults to 16): lists visited per query (speed/recall trade-off). For
            `"ivfpq_refine"` it is chosen at training time on a held-out part of the sample (the smallest nprobe
            reaching `target_recall`) unless given; `settings["nprobe_choice"]` records how.
        pq_m (`int`, *optional*): sub-quantisers of `"ivfpq"`/`"ivfpq_refine"` (must divide `dim`); defaults to
            `dim / 8` or less (`"ivfpq"`), `dim / 2` (`"ivfpq_refine"`).
        pq_bits (`int`, *optional*, defaults to 8): bits per sub-quantiser code of `"ivfpq"` (`"ivfpq_refine"`: 4).
        refine (`str`, *optional*, defaults to `"SQ8"`): the re-ranking copy of `"ivfpq_refine"`: `"SQ8"` (int8,
            dim bytes/vector), `"SQfp16"` (2 x dim) or `"Flat"` (exact, 4 x dim).
        refine_k_factor (`int`, *optional*, defaults to 8): `"ivfpq_refine"` re-ranks `k * refine_k_factor` candidates.
        target_recall (`float`, *optional*, defaults to 0.97): recall@10 the chosen nprobe reaches on the held-out part.
        hnsw_m (`int`, *optional*, defaults to 32): graph degree of `"hnsw"`.
        ef_construction (`int`, *optional*, defaults to 80): `"hnsw"` build effort.
        ef_search (`int`, *optional*, defaults to 64): `"hnsw"` search effort.
        model_reference (`str`, *optional*): path or Hub repo id of the model that produced the embeddings.
        model_fingerprint (`str`, *optional*): fingerprint of that model; searches given another one fail.
        verification_threshold (`float`, *optional*): similarity above which a hit is the same person
            (see [`calibrate_threshold`]); searches then return `same_person` flags.
        verification_calibration (`dict`, *optional*): the whole calibration behind the threshold
            (`ThresholdCalibration.to_dict()`: target and reached false-match rate, the data it came from); its
            threshold is the default `verification_threshold` and must equal it when both are given.
        embedding_settings (`dict`, *optional*): the settings that change the embedding beyond the model (flip, image
            processor size/mean/std/resample; `hf_lareid.features.embedding_settings`); queries made otherwise fail.
        runtime_settings (`dict`, *optional*): settings that change embeddings only slightly (bf16, torch version,
            device; `hf_lareid.features.runtime_settings`); queries made otherwise get a warning.
        data_dir (`str`, *optional*): the data folder that relative image paths are relative to (the ``path``
            column of `load_reid_dataset` is); [`resolve_path`] joins them to it.
        dataset (`str`, *optional*): the `load_reid_dataset` name of the data the gallery came from (``"market1501"``);
            `lareid search` reads the queries' person ids with that set's file-name scheme.
        norm_tolerance (`float`, *optional*, defaults to 1e-3): allowed deviation of embedding norms from 1.
        clock (callable, *optional*): returns the current UTC `datetime` recorded as `added_at` by [`add`] and used by
            [`remove`]'s `older_than` durations (tests inject one; not saved). Defaults to the system clock.

    Example:
        ```python
        >>> index = GalleryIndex(768, model_reference="user/lareid-market", model_fingerprint=fingerprint)
        >>> index.add(gallery_embeddings, person_ids=ids, camera_ids=cams, paths=paths)
        >>> hits = index.search(query_embeddings, k=5)
        >>> hits.scores.shape, hits.paths[0][0]
        ((2, 5), 'gallery/0001_c1s1_001051_00.jpg')
        >>> index.save("gallery_index"); index = GalleryIndex.load("gallery_index")
        ```
    """

    backend = "faiss"  # what the saved config records as "backend"; the Qdrant subclass says "qdrant"

    def __init__(
        self,
        dim: int,
        index_type: str = "flat",
        *,
        nlist: Optional[int] = None,
        nprobe: Optional[int] = None,
        pq_m: Optional[int] = None,
        pq_bits: int = 8,
        refine: str = "SQ8",
        refine_k_factor: int = 8,
        target_recall: float = 0.97,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 64,
        model_reference: Optional[str] = None,
        model_fingerprint: Optional[str] = None,
        verification_threshold: Optional[float] = None,
        verification_calibration: Optional[dict] = None,
        embedding_settings: Optional[dict] = None,
        runtime_settings: Optional[dict] = None,
        data_dir: Optional[Union[str, os.PathLike]] = None,
        dataset: Optional[str] = None,
        norm_tolerance: float = 1e-3,
        clock: Optional[Callable[[], datetime]] = None,
    ):
        if not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"`dim` must be a positive integer, got {dim!r}.")
        if index_type not in INDEX_TYPES:
            raise ValueError(f"`index_type` must be one of {list(INDEX_TYPES)}, got {index_type!r}.")
        if pq_m is None:
            pq_m = max(1, int(dim) // 2) if index_type == "ivfpq_refine" else _default_pq_m(int(dim))
        if index_type in ("ivfpq", "ivfpq_refine") and dim % pq_m:
            raise ValueError(f"`pq_m` ({pq_m}) must divide `dim` ({dim}).")
        if index_type == "ivfpq_refine" and pq_m % 2:
            raise ValueError(f"`pq_m` ({pq_m}) of an 'ivfpq_refine' index must be even (fast-scan codes).")
        if refine not in ("SQ8", "SQfp16", "Flat"):
            raise ValueError(f"`refine` must be 'SQ8', 'SQfp16' or 'Flat', got {refine!r}.")
        self.dim = int(dim)
        self.index_type = index_type
        self.settings = {
            "nlist": nlist,
            "nprobe": 16 if nprobe is None else nprobe,
            "pq_m": pq_m,
            "pq_bits": pq_bits,
            "hnsw_m": hnsw_m,
            "ef_construction": ef_construction,
            "ef_search": ef_search,
        }
        if index_type == "ivfpq_refine":  # recorded only for this type, so older configs read back unchanged
            self.settings.update(
                pq_bits=4,
                refine=refine,
                refine_k_factor=refine_k_factor,
                target_recall=target_recall,
                nprobe_choice=None if nprobe is None else "given",
            )
        self.model_reference = model_reference
        self.model_fingerprint = model_fingerprint
        if verification_calibration is not None:
            calibration_threshold = verification_calibration.get("threshold")
            if verification_threshold is None:
                verification_threshold = calibration_threshold
            elif calibration_threshold != verification_threshold:
                raise ValueError(
                    f"`verification_threshold` ({verification_threshold}) differs from the threshold of "
                    f"`verification_calibration` ({calibration_threshold}): give one of them."
                )
        self.verification_threshold = None if verification_threshold is None else float(verification_threshold)
        self.verification_calibration = None if verification_calibration is None else dict(verification_calibration)
        self.embedding_settings = _json_round_trip(embedding_settings)
        self.runtime_settings = _json_round_trip(runtime_settings)
        self.data_dir = None if data_dir is None else str(data_dir)
        self.dataset = dataset
        self.norm_tolerance = norm_tolerance
        self.clock = clock
        self._index: Optional[faiss.Index] = None if self.needs_training else self._build_faiss_index()
        self._metadata_fields: Optional[tuple[str, ...]] = None  # fixed by the first add
        self._metadata: dict[str, list] = {name: [] for name in (*_METADATA_FIELDS, _ADDED_AT)}
        self._path_set: set[str] = set()
        self._memory_mapped = False

    # ---------------------------------------------------------------------------------------------------------------
    # Properties
    # ---------------------------------------------------------------------------------------------------------------

    @property
    def needs_training(self) -> bool:
        """Whether the FAISS index is an inverted-list index that must be trained before vectors are added."""
        return self.index_type in _IVF_TYPES

    @property
    def is_trained(self) -> bool:
        return self._index is not None and self._index.is_trained

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def __repr__(self) -> str:
        return (
            f"GalleryIndex(dim={self.dim}, index_type={self.index_type!r}, size={len(self)}, "
            f"model_reference={self.model_reference!r})"
        )

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

    def resolve_path(self, path: str) -> str:
        """`path` as stored (relative to [`data_dir`] or absolute) -> a path to open: joined to `data_dir` if relative.

        Example:
            ```python
            >>> GalleryIndex(8, data_dir="/data/Market").resolve_path("bounding_box_test/0001_c1s1_001051_00.jpg")
            '/data/Market/bounding_box_test/0001_c1s1_001051_00.jpg'
            ```
        """
        if not path or self.data_dir is None or os.path.isabs(path):
            return path
        return os.path.join(self.data_dir, path)

    @property
    def added_at(self) -> np.ndarray:
        """`(len(self),)` float64 UTC POSIX seconds at which each entry was added (NaN: saved before it was recorded)."""
        values = self._field(_ADDED_AT)
        return np.full(len(self), np.nan) if values is None else values

    def _field(self, name: str) -> Optional[np.ndarray]:
        if name != _ADDED_AT and (self._metadata_fields is None or name not in self._metadata_fields):
            return None
        parts = self._metadata[name]
        if len(parts) > 1:  # consolidate once
            self._metadata[name] = parts = [np.concatenate(parts)]
        return parts[0] if parts else None

    # ---------------------------------------------------------------------------------------------------------------
    # Building
    # ---------------------------------------------------------------------------------------------------------------

    def _build_faiss_index(self, num_training: int = 0) -> faiss.Index:
        settings = self.settings
        if self.index_type == "flat":
            description = "Flat"
        elif self.index_type == "hnsw":
            description = f"HNSW{settings['hnsw_m']},Flat"
        else:
            if settings["nlist"] is None:
                settings["nlist"] = max(1, min(int(4 * np.sqrt(num_training)), num_training // 39 or 1))
            description = f"IVF{settings['nlist']},Flat"
            if self.index_type == "ivfpq":
                description = f"IVF{settings['nlist']},PQ{settings['pq_m']}x{settings['pq_bits']}"
            elif self.index_type == "ivfpq_refine":
                description = f"IVF{settings['nlist']},PQ{settings['pq_m']}x4fs,Refine({settings['refine']})"
        index = faiss.index_factory(self.dim, description, faiss.METRIC_INNER_PRODUCT)
        if self.index_type == "hnsw":
            index.hnsw.efConstruction = settings["ef_construction"]
        self._apply_search_settings(index)
        return index

    def _apply_search_settings(self, index: faiss.Index) -> None:
        if self.index_type == "hnsw":
            index.hnsw.efSearch = self.settings["ef_search"]
        elif self.needs_training:
            faiss.extract_index_ivf(index).nprobe = self.settings["nprobe"]
            if self.index_type == "ivfpq_refine":
                faiss.downcast_index(index).k_factor = float(self.settings["refine_k_factor"])

    def set_search_parameters(self, nprobe: Optional[int] = None, ef_search: Optional[int] = None) -> None:
        """Changes the speed/recall trade-off of `"ivf"`/`"ivfpq"` (`nprobe`) or `"hnsw"` (`ef_search`) indexes."""
        if nprobe is not None:
            self.settings["nprobe"] = nprobe
        if ef_search is not None:
            self.settings["ef_search"] = ef_search
        if self._index is not None:
            self._apply_search_settings(self._index)

    def _check_embeddings(self, embeddings: Any, name: str) -> np.ndarray:
        array = np.asarray(embeddings.detach().cpu().float() if hasattr(embeddings, "detach") else embeddings)
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != self.dim:
            raise ValueError(
                f"`{name}` must have shape (n, {self.dim}) to match the index dimension {self.dim}, got shape "
                f"{tuple(array.shape)}: were they produced by the same model?"
            )
        array = np.ascontiguousarray(array, dtype=np.float32)
        if not np.isfinite(array).all():
            raise ValueError(f"`{name}` contains NaN or infinite values; check the feature extraction.")
        norms = np.linalg.norm(array, axis=1)
        if array.size and np.abs(norms - 1.0).max() > self.norm_tolerance:
            worst = int(np.abs(norms - 1.0).argmax())
            raise ValueError(
                f"`{name}` must be unit-norm (row {worst} has norm {norms[worst]:.4f}): normalise them first, e.g. "
                "`x / np.linalg.norm(x, axis=1, keepdims=True)`."
            )
        return array

    def train(self, sample: Any) -> None:
        """Trains an `"ivf"`/`"ivfpq"` index on a sample of unit-norm embeddings `(n, dim)` (n >= `nlist`)."""
        if not self.needs_training:
            return
        if self.is_trained:
            raise ValueError("The index is already trained.")
        array = self._check_embeddings(sample, "sample")
        index = self._build_faiss_index(len(array))
        minimum = max(self.settings["nlist"], 2 ** self.settings["pq_bits"] if "pq" in self.index_type else 1)
        if len(array) < minimum:
            raise ValueError(
                f"Training an {self.index_type!r} index with nlist={self.settings['nlist']} needs at least {minimum} "
                f"vectors (39x that is better), got {len(array)}. Use a larger sample, a smaller nlist or "
                "index_type='flat'."
            )
        logger.info("Training a %s index on %d vectors.", self.index_type, len(array))
        index.train(array)
        self._index = index
        if self.index_type == "ivfpq_refine" and self.settings.get("nprobe_choice") != "given":
            self._choose_nprobe(array)

    def _choose_nprobe(self, sample: np.ndarray, num_queries: int = 200) -> None:
        """Sets the smallest nprobe (a power of 2) whose recall@10 on a held-out part of `sample` reaches the target.

        The trained index is filled with the rest of the sample in a copy; the held-out vectors, slightly perturbed so
        that they do not find themselves, are its queries. Records `settings["nprobe_choice"]`.
        """
        rng = np.random.default_rng(0)
        num_queries = min(num_queries, len(sample) // 5)
        order = rng.permutation(len(sample))
        queries, gallery = sample[order[:num_queries]], sample[order[num_queries:]]
        if num_queries == 0 or len(gallery) < 10:
            return
        noise = rng.standard_normal(queries.shape).astype(np.float32) * 0.02
        queries = queries + noise
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        exact = np.argsort(-(queries @ gallery.T), axis=1)[:, :10]
        trial = faiss.clone_index(self._index)
        trial.add(gallery)
        ivf = faiss.extract_index_ivf(trial)
        faiss.downcast_index(trial).k_factor = float(self.settings["refine_k_factor"])
        target, nlist = self.settings["target_recall"], self.settings["nlist"]
        nprobe, recall = 1, 0.0
        while True:
            ivf.nprobe = nprobe
            found = trial.search(queries, 10)[1]
            recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)]))
            if recall >= target or nprobe >= nlist:
                break
            nprobe = min(2 * nprobe, nlist)
        self.settings["nprobe"] = nprobe
        self.settings["nprobe_choice"] = {"held_out": num_queries, "gallery": len(gallery), "recall_at_10": recall}
        self._apply_search_settings(self._index)
        logger.info(
            "Chose nprobe=%d for the %s index (recall@10 %.3f on a held-out sample).", nprobe, self.index_type, recall
        )
        if recall < target:
            logger.warning(
                "The %s index reaches recall@10 %.3f < target %.2f even visiting every list: raise refine_k_factor "
                "or pq_m, or use refine='SQfp16'.",
                self.index_type,
                recall,
                target,
            )

    def add(
        self,
        embeddings: Any,
        person_ids: Optional[Sequence[int]] = None,
        camera_ids: Optional[Sequence[int]] = None,
        paths: Optional[Sequence[str]] = None,
    ) -> None:
        """Adds unit-norm embeddings `(n, dim)` with optional per-image metadata (each of length n).

        Every call must give the same metadata fields as the first one. An untrained `"ivf"`/`"ivfpq"` index is
        first trained on these embeddings.
        """
        array = self._check_embeddings(embeddings, "embeddings")
        given, columns = self._metadata_columns(len(array), person_ids, camera_ids, paths)
        self._check_writable()
        columns[_ADDED_AT] = np.full(len(array), self._now().timestamp(), dtype=np.float64)
        # Everything is checked: only now does the index change (a failed call leaves it as it was).
        if len(array) and not self.is_trained:
            self.train(array)
        if self._metadata_fields is None:  # the first add fixes the fields
            self._metadata_fields = given
        if len(array) == 0:
            return
        self._index.add(array)
        for name, column in columns.items():
            self._metadata[name].append(column)
        if "paths" in columns:
            self._path_set.update(path for path in columns["paths"].tolist() if path)  # "" = unknown

    def _metadata_columns(
        self,
        num: int,
        person_ids: Optional[Sequence[int]],
        camera_ids: Optional[Sequence[int]],
        paths: Optional[Sequence[str]],
    ) -> tuple[tuple[str, ...], dict[str, np.ndarray]]:
        """`(given field names, {name: (num,) int64 / str column})` of one add, checked against the first add's fields."""
        metadata = {"person_ids": person_ids, "camera_ids": camera_ids, "paths": paths}
        given = tuple(name for name in _METADATA_FIELDS if metadata[name] is not None)
        if self._metadata_fields is not None and given != self._metadata_fields:
            raise ValueError(
                f"This index stores the metadata fields {list(self._metadata_fields)}, but this call gives "
                f"{list(given)}: give the same fields every time."
            )
        columns = {}
        for name in given:
            values = metadata[name]
            try:
                column = np.asarray([str(v) for v in values]) if name == "paths" else np.asarray(values, dtype=np.int64)
            except (TypeError, ValueError) as error:
                raise ValueError(
                    f"`{name}` must be a sequence of {'strings' if name == 'paths' else 'integers'}: {error}"
                ) from error
            if column.shape != (num,):
                raise ValueError(f"`{name}` has {len(column)} entries for {num} embeddings: they must match.")
            columns[name] = column
        return given, columns

    def add_batches(
        self,
        batches: Iterable[Any],
        *,
        checkpoint_dir: Optional[Union[str, os.PathLike]] = None,
        checkpoint_every: int = 50_000,
        training_size: int = 50_000,
        show_progress: bool = True,
    ) -> int:
        """Adds a stream of batches, skipping what the index already holds; resumable with checkpoints.

        A batch is an object with an `embeddings` attribute (and optional `person_ids`, `camera_ids`, `paths`, as
        `hf_lareid.FeatureSet`), a dict with those keys, a tuple `(embeddings, metadata_dict)` or a bare array.

        Resuming identifies entries by path, the one resume mechanism of the package: images whose path is already
        indexed (compared resolved against [`data_dir`], see [`unindexed`]) are skipped. A non-empty index refuses a
        batch without paths (it could not tell what is already there): give paths, or use [`add`]. To avoid computing
        embeddings that will be skipped, filter the images with [`unindexed`] first, as `lareid index` does.

        Args:
            batches (iterable): the batches.
            checkpoint_dir (`str` or `os.PathLike`, *optional*): where to [`save`] (atomically) every
                `checkpoint_every` added images and at the end; resume with `GalleryIndex.load(checkpoint_dir)`
                and the same stream.
            checkpoint_every (`int`, *optional*, defaults to 50000): images between checkpoints.
            training_size (`int`, *optional*, defaults to 50000): images buffered to train an untrained
                `"ivf"`/`"ivfpq"` index before the first add.
            show_progress (`bool`, *optional*, defaults to `True`): show a progress bar.

        Returns:
            `int`: the number of images added by this call.

        Example:
            ```python
            >>> index = GalleryIndex.load_or_create("gallery_index", dim=768, model_fingerprint=fingerprint)
            >>> index.add_batches(iter_features(model, dataset), checkpoint_dir="gallery_index")
            ```
        """
        held_before = len(self)  # a non-empty index means a resumed stream
        added = added_since_checkpoint = 0
        pending: list[tuple[np.ndarray, dict]] = []  # buffered until the index can be trained

        def flush(parts: list[tuple[np.ndarray, dict]]) -> int:
            if not self.is_trained and self.needs_training:
                self.train(np.concatenate([embeddings for embeddings, _ in parts]))
            for embeddings, metadata in parts:
                self.add(embeddings, **metadata)
            return sum(len(embeddings) for embeddings, _ in parts)

        with tqdm(desc="Indexing", unit="img", disable=not show_progress) as progress:
            for batch in batches:
                embeddings, metadata = _parse_batch(batch)
                if metadata.get("paths") is None:
                    if held_before:
                        raise ValueError(
                            f"add_batches resumes by path, but this batch has no paths and the index already holds "
                            f"{held_before} entries: give each batch its paths, or add new embeddings with `add`."
                        )
                    keep = np.ones(len(embeddings), dtype=bool)
                else:
                    keep = self.unindexed(metadata["paths"])
                if not keep.all():
                    embeddings = np.asarray(embeddings)[keep]
                    metadata = {name: _select(values, keep) for name, values in metadata.items()}
                if len(embeddings) == 0:
                    continue
                pending.append((embeddings, metadata))
                buffered = sum(len(part) for part, _ in pending)
                if self.is_trained or not self.needs_training or buffered >= training_size:
                    count = flush(pending)
                    pending = []
                    added += count
                    added_since_checkpoint += count
                    progress.update(count)
                if checkpoint_dir is not None and added_since_checkpoint >= checkpoint_every:
                    self.save(checkpoint_dir)
                    fault_point("index:checkpoint")
                    added_since_checkpoint = 0
            if pending:
                count = flush(pending)
                added += count
                progress.update(count)
        if checkpoint_dir is not None and self._index is not None:
            self.save(checkpoint_dir)
        return added

    def set_verification_calibration(self, calibration: Any) -> None:
        """Stores a `ThresholdCalibration` (or its `to_dict()`) and its threshold; saved with the index."""
        values = calibration.to_dict() if hasattr(calibration, "to_dict") else dict(calibration)
        self.verification_calibration = values
        self.verification_threshold = float(values["threshold"])

    # ---------------------------------------------------------------------------------------------------------------
    # Erasure
    # ---------------------------------------------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = (self.clock or _utc_now)()
        return now if now.tzinfo else now.replace(tzinfo=timezone.utc)

    def _check_writable(self) -> None:
        if self._memory_mapped:
            raise ValueError(
                "This index was loaded with mmap=True and is read-only: load it without mmap to add or remove entries."
            )

    def matching(
        self,
        *,
        person_ids: Optional[Sequence[int]] = None,
        paths: Optional[Sequence[str]] = None,
        camera_ids: Optional[Sequence[int]] = None,
        older_than: Union[None, str, datetime, timedelta] = None,
    ) -> np.ndarray:
        """`(len(self),)` bool: the entries matching every given criterion (see [`remove`])."""
        criteria = {"person_ids": person_ids, "paths": paths, "camera_ids": camera_ids, "older_than": older_than}
        given = {name: value for name, value in criteria.items() if value is not None}
        if not given:
            raise ValueError("Say what to remove: person_ids, paths, camera_ids and/or older_than.")
        selected = np.ones(len(self), dtype=bool)
        for name in ("person_ids", "camera_ids", "paths"):
            if name not in given:
                continue
            values = self._field(name)
            if values is None:
                raise ValueError(f"This index stores no {name}: it cannot select entries by them.")
            wanted = [str(v) for v in given[name]] if name == "paths" else np.asarray(given[name], dtype=np.int64)
            selected &= np.isin(values, wanted)
        if "older_than" in given:
            cutoff = parse_older_than(given["older_than"], self._now()).timestamp()
            selected &= self.added_at < cutoff  # NaN (not recorded) is never older
        return selected

    def remove(
        self,
        *,
        person_ids: Optional[Sequence[int]] = None,
        paths: Optional[Sequence[str]] = None,
        camera_ids: Optional[Sequence[int]] = None,
        older_than: Union[None, str, datetime, timedelta] = None,
    ) -> int:
        """Removes the entries matching every given criterion from the vectors and the metadata together.

        The index changes in memory (positions after a removed entry shift down, as if it had never been added);
        [`save`] writes it atomically with new checksums. Every index type removes: `"flat"` and the inverted-list
        types drop the codes, `"hnsw"` (no removal in FAISS) is rebuilt from its stored vectors.

        Args:
            person_ids, camera_ids (sequence of `int`, *optional*): entries of these people / cameras.
            paths (sequence of `str`, *optional*): entries with these paths (as stored).
            older_than (`str`, `datetime` or `timedelta`, *optional*): entries added before this UTC time: an ISO 8601
                date-time (`"2026-01-31T00:00:00Z"`; no zone = UTC), a duration before now (`"30d"`, `"12h"`, `"90m"`,
                `"2w"`) or a `timedelta`.

        Returns:
            `int`: the number of entries removed.

        Example:
            ```python
            >>> index = GalleryIndex.load("gallery_index")
            >>> index.remove(person_ids=[42]), index.remove(older_than="30d")
            (12, 310)
            >>> index.save("gallery_index")
            ```
        """
        selected = self.matching(person_ids=person_ids, paths=paths, camera_ids=camera_ids, older_than=older_than)
        self._check_writable()
        removed = np.flatnonzero(selected).astype(np.int64)
        if len(removed) == 0:
            return 0
        keep = ~selected
        if self.index_type == "hnsw":
            vectors = self._index.reconstruct_n(0, len(self))[keep]
            self._index = self._build_faiss_index()
            self._index.add(vectors)
        else:
            _remove_positions(self._index, removed)
        for name in (*_METADATA_FIELDS, _ADDED_AT):
            values = self._field(name)
            if values is not None:
                self._metadata[name] = [values[keep]]
        self._path_set = set(self.paths or ()) - {""}
        logger.info("Removed %d entries from the gallery index (%d left).", len(removed), len(self))
        return int(len(removed))

    @property
    def indexed_paths(self) -> set[str]:
        """The set of image paths already in the index (empty without paths)."""
        return set(self._path_set)

    def unindexed(self, paths: Iterable[str]) -> np.ndarray:
        """`(len(paths),)` bool: True where a path is not in the index yet (paths compared resolved against `data_dir`,
        so an index of relative paths recognises the same images given as absolute paths, and the reverse)."""
        held = self._path_set | {self.resolve_path(path) for path in self._path_set}
        paths = list(paths)
        return np.fromiter(
            (path not in held and self.resolve_path(path) not in held for path in paths), bool, len(paths)
        )

    # ---------------------------------------------------------------------------------------------------------------
    # Searching
    # ---------------------------------------------------------------------------------------------------------------

    def check_fingerprint(self, model_fingerprint: Optional[str]) -> None:
        """Raises [`FingerprintMismatchError`] if `model_fingerprint` differs from the gallery model's."""
        if model_fingerprint is None or self.model_fingerprint is None:
            return
        if model_fingerprint != self.model_fingerprint:
            raise FingerprintMismatchError(
                f"The query model's fingerprint {model_fingerprint!r} differs from the one that built this gallery "
                f"index ({self.model_fingerprint!r}, model {self.model_reference!r}): embeddings of different models "
                "are not comparable. Use the same model or rebuild the index."
            )

    def check_embedding_settings(
        self, embedding_settings: Optional[dict] = None, runtime_settings: Optional[dict] = None
    ) -> None:
        """
        Raises [`EmbeddingSettingsMismatchError`] if `embedding_settings` (flip, image processor) differ from the
        gallery's; logs a warning if `runtime_settings` (bf16, runtime) differ. Settings not recorded are not checked.
        """
        difference = _settings_difference(self.embedding_settings, embedding_settings)
        if difference:
            raise EmbeddingSettingsMismatchError(
                f"These embeddings are made with other settings than the gallery index's ({difference}): embed them "
                "the way the index was built (the same --flip and image processor) or build a new index."
            )
        difference = _settings_difference(self.runtime_settings, runtime_settings, common_keys_only=True)
        if difference:
            logger.warning(
                "The query embeddings come from another runtime than the gallery's (%s): similarities may differ "
                "slightly (bf16 vs fp32: cosine ~0.9999).",
                difference,
            )

    def _checked_queries(
        self,
        queries: Any,
        k: int,
        model_fingerprint: Optional[str],
        embedding_settings: Optional[dict],
        runtime_settings: Optional[dict],
    ) -> np.ndarray:
        """`(num_queries, dim)` float32 queries, after the fingerprint, settings, non-empty index and `k` checks."""
        self.check_fingerprint(model_fingerprint)
        self.check_embedding_settings(embedding_settings, runtime_settings)
        if len(self) == 0:
            raise ValueError("The gallery index is empty: add embeddings first (`add` or `add_batches`).")
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"`k` must be a positive integer, got {k!r}.")
        return self._check_embeddings(queries, "queries")

    def search(
        self,
        queries: Any,
        k: int = 10,
        *,
        model_fingerprint: Optional[str] = None,
        embedding_settings: Optional[dict] = None,
        runtime_settings: Optional[dict] = None,
    ) -> SearchResult:
        """The `k` most similar gallery images of each query.

        Args:
            queries (`np.ndarray` or `torch.Tensor` of shape `(num_queries, dim)` or `(dim,)`): unit-norm embeddings.
            k (`int`, *optional*, defaults to 10): hits per query (at most the index size).
            model_fingerprint (`str`, *optional*): fingerprint of the query model, checked against the index's.
            embedding_settings, runtime_settings (`dict`, *optional*): how the queries were embedded, checked by
                [`check_embedding_settings`].

        Returns:
            [`SearchResult`] with arrays of shape `(num_queries, min(k, len(self)))`.
        """
        array = self._checked_queries(queries, k, model_fingerprint, embedding_settings, runtime_settings)
        scores, indices = self._index.search(array, min(int(k), len(self)))
        indices = indices.astype(np.int64)
        found = indices >= 0  # approximate indexes may return fewer hits
        safe = np.where(found, indices, 0)
        result = SearchResult(scores=scores, indices=indices)
        for name in ("person_ids", "camera_ids"):
            values = self._field(name)
            if values is not None:
                setattr(result, name, np.where(found, values[safe], -1))
        paths = self._field("paths")
        if paths is not None:
            result.paths = [[str(paths[i]) if i >= 0 else "" for i in row] for row in indices]
        if self.verification_threshold is not None:
            result.same_person = found & (scores > self.verification_threshold)
        return result

    # ---------------------------------------------------------------------------------------------------------------
    # Saving and loading
    # ---------------------------------------------------------------------------------------------------------------

    def _config(self) -> dict:
        """The content of `gallery_config.json` except the checksums: the one place that lists what a saved index records."""
        return {
            "format_version": _FORMAT_VERSION,
            "dim": self.dim,
            "index_type": self.index_type,
            "size": len(self),
            "settings": self.settings,
            "model_reference": self.model_reference,
            "model_fingerprint": self.model_fingerprint,
            "verification_threshold": self.verification_threshold,
            "verification_calibration": self.verification_calibration,
            "embedding_settings": self.embedding_settings,
            "runtime_settings": self.runtime_settings,
            "data_dir": self.data_dir,
            "dataset": self.dataset,
            "norm_tolerance": self.norm_tolerance,
            "metadata_fields": list(self._metadata_fields or ()),
        }

    @classmethod
    def _from_config(cls, config: dict) -> GalleryIndex:
        """An empty index with the settings of a config read by [`_read_config`]."""
        index = cls(
            config["dim"],
            config["index_type"],
            model_reference=config.get("model_reference"),
            model_fingerprint=config.get("model_fingerprint"),
            verification_threshold=config.get("verification_threshold"),
            verification_calibration=config.get("verification_calibration"),
            embedding_settings=config.get("embedding_settings"),
            runtime_settings=config.get("runtime_settings"),
            data_dir=config.get("data_dir"),
            dataset=config.get("dataset"),
            norm_tolerance=config.get("norm_tolerance", 1e-3),
        )
        index.settings.update(config["settings"])
        return index

    def save(self, directory: Union[str, os.PathLike]) -> None:
        """Saves atomically into `directory`: files go to a temporary sibling folder, are fsynced, then renamed.

        An interrupted save leaves the previous index (or none) in place, never a partial one: the previous index is
        moved aside to `.<name>.old-*` just before the new one is renamed into place, and moved back if that rename
        fails. Only a crash between the two renames leaves it aside; the next [`load`] or save puts it back.

        Raises:
            `FileExistsError`: `directory` exists and is not a gallery index (a file, a model or photo folder):
                it is never replaced.
            [`hf_lareid.file_utils.FolderBusyError`]: another process is writing this index.
        """
        if self._index is None:
            raise ValueError("Nothing to save: the index has not been trained or filled yet.")
        check_index_target(directory)  # before the lock file is made beside a folder that is not ours
        with folder_lock(directory):
            _recover(directory)
            check_index_target(directory)
            with atomic_folder(directory, replace_existing=True) as temporary:
                faiss.write_index(self._index, str(temporary / _INDEX_NAME))
                arrays = {name: self._field(name) for name in (self._metadata_fields or ())}
                np.savez(temporary / _METADATA_NAME, **arrays, **{_ADDED_AT: self.added_at})
                config = self._config()
                config["sha256"] = {name: file_sha256(temporary / name) for name in _DATA_FILES}
                config["file_sizes"] = {name: (temporary / name).stat().st_size for name in _DATA_FILES}
                config["quick_sha256"] = {name: _quick_sha256(temporary / name) for name in _DATA_FILES}
                config[_CONFIG_SHA256_KEY] = _config_digest(config)
                (temporary / _CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
                for name in (_INDEX_NAME, _METADATA_NAME, _CONFIG_NAME):
                    fault_point(f"write:{name}")
        logger.info("Saved a gallery index of %d images to %s.", len(self), directory)

    @classmethod
    def load(cls, directory: Union[str, os.PathLike], *, mmap: bool = False, verify: bool = False) -> GalleryIndex:
        """Loads an index written by [`save`], checking its config's own checksum, its files and its sizes.

        Verification policy: [`save`] records the full SHA-256, the size and a quick SHA-256 (first and last MiB) of
        `index.faiss` and `metadata.npz`. Every load checks the config's checksum, both sizes, the quick hash of
        `index.faiss` and the full SHA-256 of `metadata.npz` (read whole anyway); the full SHA-256 of `index.faiss`
        (about 3 GB at 1M x 768, seconds to read) only with `verify=True` (`lareid index --index_dir D --verify`) or
        for an index saved before sizes were recorded. A crash during an earlier save is repaired first (the previous
        index is put back, leftovers removed), with a log line saying so.

        Args:
            directory (`str` or `os.PathLike`): the index folder.
            mmap (`bool`, *optional*, defaults to `False`): map the vectors from disk instead of reading them into RAM
                (FAISS `IO_FLAG_MMAP` for the inverted lists of `"ivf"`/`"ivfpq"`, `IO_FLAG_MMAP_IFC` for the vectors
                of `"flat"`/`"hnsw"` and the refinement codes of `"ivfpq_refine"`, whose fast-scan codes stay in RAM),
                for galleries larger than memory; the index is then read-only (no add / remove). Searches read pages on
                demand, so the first ones are slower while the page cache fills.
            verify (`bool`, *optional*, defaults to `False`): also check the full SHA-256 of `index.faiss`.

        Raises:
            `FileNotFoundError`: no index in `directory`.
            [`CorruptIndexError`]: a missing, damaged, edited or inconsistent file.
        """
        directory = Path(directory)
        config_path = directory / _CONFIG_NAME
        if not config_path.is_file():
            try:
                with folder_lock(directory):
                    _recover(directory)
            except OSError:
                pass  # another writer is busy, or a read-only place: report what is there
        if not config_path.is_file():
            backups = sorted(directory.parent.glob(f".{directory.name}.old-*"))
            hint = (
                f" A save was interrupted; the previous index is in {backups[-1]}: rename it to {directory}."
                if backups and not directory.exists()
                else " Build one with `GalleryIndex(...).add(...)` and `save(directory)` (or `lareid index`)."
            )
            raise FileNotFoundError(f"No gallery index in {directory} (missing {_CONFIG_NAME}).{hint}")
        config = _read_config(config_path)
        if config.get("backend", "faiss") == "qdrant":
            from .qdrant_store import QdrantGalleryIndex

            return QdrantGalleryIndex.open(directory, config)
        _check_files(directory, config, verify)
        index = cls._from_config(config)
        dim = index.dim
        # The two flags exclude each other: IO_FLAG_MMAP maps inverted lists, IO_FLAG_MMAP_IFC flat codes (flat,
        # hnsw storage, the refinement copy of ivfpq_refine, whose fast-scan lists stay in RAM).
        flags = 0
        if mmap:
            flags = faiss.IO_FLAG_MMAP if index.index_type in ("ivf", "ivfpq") else faiss.IO_FLAG_MMAP_IFC
        try:
            faiss_index = faiss.read_index(str(directory / _INDEX_NAME), flags)
            with np.load(directory / _METADATA_NAME, allow_pickle=False) as arrays:
                metadata = {name: arrays[name] for name in config["metadata_fields"]}
                added_at = arrays[_ADDED_AT] if _ADDED_AT in arrays.files else None
        except (RuntimeError, OSError, ValueError, KeyError) as error:
            raise CorruptIndexError(f"Cannot read the gallery index in {directory}: {error}") from error
        if added_at is not None:
            metadata[_ADDED_AT] = added_at
        sizes = {faiss_index.ntotal, config.get("size"), *(len(values) for values in metadata.values())}
        if len(sizes) != 1 or faiss_index.d != dim:
            raise CorruptIndexError(
                f"The gallery index in {directory} is inconsistent (sizes {sorted(map(str, sizes))}, dimension "
                f"{faiss_index.d} vs {dim}): rebuild it."
            )
        index._apply_search_settings(faiss_index)
        index._index = faiss_index
        index._metadata_fields = tuple(config["metadata_fields"])
        index._metadata = {
            name: [metadata[name]] if name in metadata else [] for name in (*_METADATA_FIELDS, _ADDED_AT)
        }
        index._memory_mapped = mmap
        if "paths" in metadata:
            index._path_set = {path for path in metadata["paths"].tolist() if path}
        return index

    @classmethod
    def load_or_create(cls, directory: Union[str, os.PathLike], dim: int, **kwargs) -> GalleryIndex:
        """Loads the index (e.g. a checkpoint) in `directory` if there is one, else creates `GalleryIndex(dim, ...)`.

        A loaded index must match `dim`, `index_type`, `model_fingerprint`, `embedding_settings` and `data_dir` when
        given. A path that exists and is not an index is refused (`FileExistsError`) before any work is done.
        """
        check_index_target(directory)
        with folder_lock(directory):
            _recover(directory)
        if not (Path(directory) / _CONFIG_NAME).is_file():
            return cls(dim, **kwargs)
        index = cls.load(directory)
        if index.dim != dim or index.index_type != kwargs.get("index_type", index.index_type):
            raise ValueError(
                f"The index in {directory} has dim={index.dim}, index_type={index.index_type!r}, not dim={dim}, "
                f"index_type={kwargs.get('index_type')!r}: use another directory or delete it."
            )
        index.check_fingerprint(kwargs.get("model_fingerprint"))
        data_dir = kwargs.get("data_dir")
        if data_dir is not None and index.data_dir is not None and str(data_dir) != index.data_dir:
            raise ValueError(
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
                setattr(index, name, _json_round_trip(kwargs[name]))
        logger.info("Resuming the gallery index in %s (%d images).", directory, len(index))
        return index


def is_gallery_index(directory: Union[str, os.PathLike]) -> bool:
    """Whether `directory` holds a `gallery_config.json` written by [`GalleryIndex.save`] (readable, any version)."""
    try:
        config = json.loads((Path(directory) / _CONFIG_NAME).read_text())
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
            f"{name} exists and is not a gallery index (no valid {_CONFIG_NAME}): choose a new or empty folder for "
            "the index; nothing in it was changed."
        )
    foreign = [name for name in entries if name not in (_CONFIG_NAME, *_BACKEND_ENTRIES[_recorded_backend(path)])]
    if foreign:
        raise FileExistsError(
            f"{name} is a gallery index but also holds other files ({', '.join(foreign[:3])}), which a save would "
            "remove: move them out or choose another folder for the index."
        )


def _recorded_backend(directory: Path) -> str:
    """The backend a gallery index folder's config records (`"faiss"` when it names none or cannot be read)."""
    try:
        backend = json.loads((directory / _CONFIG_NAME).read_text()).get("backend", "faiss")
    except (OSError, ValueError, AttributeError):
        return "faiss"
    return backend if backend in _BACKEND_ENTRIES else "faiss"


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_older_than(value: Union[str, datetime, timedelta], now: datetime) -> datetime:
    """The UTC cut-off meant by `value`: an ISO 8601 date-time (no zone = UTC), a duration before `now` (`"30d"`,
    `"12h"`, `"90m"`, `"45s"`, `"2w"`) or a `timedelta`."""
    if isinstance(value, timedelta):
        return now - value
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    match = _DURATION.match(str(value))
    if match:
        return now - timedelta(**{_DURATION_UNITS[match.group(2)]: float(match.group(1))})
    try:
        moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"older_than {value!r} is neither an ISO 8601 date-time (2026-01-31T00:00:00Z) nor a duration (30d, 12h, "
            "90m, 45s, 2w)."
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _remove_positions(index: faiss.Index, removed: np.ndarray) -> None:
    """Drops the entries at sorted positions `removed` from a flat or inverted-list FAISS index, renumbering the rest
    so that ids stay positions `0..ntotal-1` (IVF `remove_ids` leaves gaps).

    `IndexRefine` (no removal of its own): the refinement copy drops them, and the fast-scan base, whose block lists
    do not take further adds reliably after `remove_ids`, is re-encoded from that copy in chunks.
    """
    selector = faiss.IDSelectorBatch(removed)
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexRefine):
        refine = faiss.downcast_index(index.refine_index)
        refine.remove_ids(selector)
        base = faiss.downcast_index(index.base_index)
        base.reset()
        for start in range(0, refine.ntotal, 65_536):
            base.add(refine.reconstruct_n(start, min(65_536, refine.ntotal - start)))
        index.ntotal = refine.ntotal
        return
    index.remove_ids(selector)
    if isinstance(index, faiss.IndexFlatCodes):
        return  # flat codes compact themselves
    invlists = faiss.extract_index_ivf(index).invlists
    for list_no in range(invlists.nlist):
        size = invlists.list_size(list_no)
        if size:
            ids = faiss.rev_swig_ptr(invlists.get_ids(list_no), size)  # a writable view of the stored ids
            ids -= np.searchsorted(removed, ids)


def _check_files(directory: Path, config: dict, verify: bool) -> None:
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
        full = verify or sizes is None or quick is None or name == _METADATA_NAME
        if (file_sha256(path) != expected) if full else (_quick_sha256(path) != quick.get(name)):
            raise CorruptIndexError(f"{path} is damaged (checksum mismatch): rebuild or restore the index.")


def _quick_sha256(path: Path) -> str:
    """SHA-256 of the first and last MiB of `path` (all of it when smaller): what every load checks."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as file:
        digest.update(file.read(_QUICK_HASH_BYTES))
        if size > _QUICK_HASH_BYTES:
            file.seek(max(_QUICK_HASH_BYTES, size - _QUICK_HASH_BYTES))
            digest.update(file.read())
    return digest.hexdigest()


def _recover(directory: Union[str, os.PathLike]) -> None:
    """Repairs what a crash during a save left beside `directory` (call holding its lock) and says what was done."""
    for done in recover_folder(directory):
        logger.warning("Gallery index %s: %s.", directory, done)


def _config_digest(config: dict) -> str:
    """SHA-256 of the canonical JSON of `config` without its own digest."""
    content = {key: value for key, value in config.items() if key != _CONFIG_SHA256_KEY}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _read_config(config_path: Path) -> dict:
    """The parsed `gallery_config.json`, with its format, required fields and own checksum verified."""
    try:
        config = json.loads(config_path.read_text())
        version = config["format_version"]
    except (ValueError, KeyError, TypeError) as error:
        raise CorruptIndexError(f"{config_path} is not a valid gallery index config ({error}).") from error
    if version != _FORMAT_VERSION:
        raise CorruptIndexError(
            f"{config_path} has format version {version}; this hf_lareid reads version {_FORMAT_VERSION}: rebuild the "
            "index with `lareid index` into a new folder."
        )
    missing = [key for key in (*_REQUIRED_CONFIG_FIELDS, _CONFIG_SHA256_KEY) if key not in config]
    if missing:
        raise CorruptIndexError(
            f"{config_path} lacks {missing}: it was edited or damaged; rebuild or restore the index."
        )
    if config[_CONFIG_SHA256_KEY] != _config_digest(config):
        raise CorruptIndexError(
            f"{config_path} does not match its own checksum: it was edited or damaged; rebuild or restore the index."
        )
    backend = config.get("backend", "faiss")
    if backend not in _BACKEND_ENTRIES:
        raise CorruptIndexError(
            f"{config_path} names the backend {backend!r}; this hf_lareid knows {sorted(_BACKEND_ENTRIES)}: upgrade it."
        )
    files = _BACKEND_CHECKSUMMED[backend]
    if not isinstance(config["sha256"], dict) or sorted(config["sha256"]) != sorted(files):
        raise CorruptIndexError(f"{config_path} must record the SHA-256 of {list(files)}: rebuild the index.")
    return config


def _json_round_trip(value: Optional[dict]) -> Optional[dict]:
    """`value` as it reads back from JSON (tuples become lists), so recorded and fresh settings compare equal."""
    return None if value is None else json.loads(json.dumps(value, sort_keys=True, default=str))


def _settings_difference(recorded: Optional[dict], given: Optional[dict], common_keys_only: bool = False) -> str:
    """
    `"flip: True (index) vs False (query), ..."`, or `""` when equal or either side is not recorded.

    `common_keys_only` compares only the keys both sides record (an index older than a setting, e.g. `runtime`).
    """
    if recorded is None or given is None:
        return ""
    given = _json_round_trip(given)
    keys = sorted(set(recorded) & set(given) if common_keys_only else set(recorded) | set(given))
    return ", ".join(
        f"{key}: {recorded.get(key)!r} (index) vs {given.get(key)!r} (query)"
        for key in keys
        if recorded.get(key) != given.get(key)
    )


def _select(values: Any, keep: np.ndarray) -> Any:
    if values is None:
        return None
    if isinstance(values, np.ndarray):
        return values[keep]
    return [value for value, kept in zip(values, keep) if kept]


def _parse_batch(batch: Any) -> tuple[np.ndarray, dict]:
    """`(embeddings, {"person_ids": ..., "camera_ids": ..., "paths": ...})` from any supported batch form."""
    if hasattr(batch, "embeddings"):
        embeddings, metadata = batch.embeddings, {name: getattr(batch, name, None) for name in _METADATA_FIELDS}
    elif isinstance(batch, dict):
        if "embeddings" not in batch:
            raise ValueError(f"A batch dict needs an 'embeddings' key, got keys {sorted(batch)}.")
        embeddings, metadata = batch["embeddings"], {name: batch.get(name) for name in _METADATA_FIELDS}
    elif isinstance(batch, tuple) and len(batch) == 2 and isinstance(batch[1], dict):
        embeddings, metadata = batch[0], {name: batch[1].get(name) for name in _METADATA_FIELDS}
    else:
        embeddings, metadata = batch, {}
    if hasattr(embeddings, "detach"):
        embeddings = embeddings.detach().cpu().float().numpy()
    metadata = {name: values for name, values in metadata.items() if values is not None}
    if "paths" in metadata and len(metadata["paths"]) == 0:  # e.g. a FeatureSet without paths
        del metadata["paths"]
    return np.asarray(embeddings), metadata
