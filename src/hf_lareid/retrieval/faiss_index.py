"""`GalleryIndex`: search a gallery of unit-norm embeddings with FAISS, with metadata, a model fingerprint and atomic saves.

The index knows no model: it stores embeddings, per-image metadata (person id, camera id, path), the reference
(path or Hub repo id) and fingerprint string of the model that produced the embeddings, and optionally a
verification threshold (same person when `cosine similarity > threshold`); the record and its checks are shared
with the Qdrant backend (`backend.py`).

On disk (`save(directory)`, format in `storage.py`): `gallery_config.json` (settings, counts, SHA-256 of the other
files and of the config itself), `index.faiss` (`faiss.write_index`) and `metadata.npz` (plain arrays, loaded
without pickle). A save never replaces a path that is not a gallery index, holds the folder's write lock
(`.NAME.lock` beside it), and the next open repairs what a crash during a save left (see `hf_lareid.utils.io`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional, Union

import faiss
import numpy as np
from tqdm.auto import tqdm

from ..embedding.provenance import Provenance
from ..evaluation.threshold import check_rate
from ..utils.errors import InvalidInputError
from ..utils.io import atomic_folder, fault_point, folder_lock
from .backend import ADDED_AT, METADATA_FIELDS, GalleryBackend, SearchResult, parse_batch, select
from .retention import matching_entries, removal_criteria
from .storage import (
    CONFIG_NAME,
    FAISS_FILES,
    INDEX_NAME,
    METADATA_NAME,
    CorruptIndexError,
    check_files,
    check_index_target,
    config_text,
    data_file_records,
    load_index,
    recover,
    register_backend,
    write_error,
)

logger = logging.getLogger(__name__)

INDEX_TYPES = ("flat", "ivf", "ivfpq", "ivfpq_refine", "hnsw")
_IVF_TYPES = ("ivf", "ivfpq", "ivfpq_refine")
_REFINE_TYPES = ("SQ8", "SQfp16", "Flat")


def _default_pq_m(dim: int) -> int:
    """Largest divisor of `dim` giving sub-vectors of at least 8 dimensions (e.g. 96 for 768)."""
    return max(m for m in range(1, max(1, dim // 8) + 1) if dim % m == 0)


@register_backend
class GalleryIndex(GalleryBackend):
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
            processor size/mean/std/resample, the model config; `ReIDEncoder.provenance.index_fields()`); queries made otherwise fail.
        runtime_settings (`dict`, *optional*): settings that change embeddings only slightly (bf16, torch version,
            device; `ReIDEncoder.provenance.index_fields()`); queries made otherwise get a warning.
        data_dir (`str`, *optional*): the data folder that relative image paths are relative to (the ``path``
            column of `load_reid_dataset` is); [`resolve_path`] joins them to it.
        dataset (`str`, *optional*): the `load_reid_dataset` name of the data the gallery came from (``"market1501"``);
            `lareid search` reads the queries' person ids with that set's file-name scheme.
        norm_tolerance (`float`, *optional*, defaults to 1e-3): allowed deviation of embedding norms from 1.
        clock (callable, *optional*): returns the current UTC `datetime` recorded as `added_at` by [`add`] and used by
            [`remove`]'s `older_than` durations (tests inject one; not saved). Defaults to the system clock.

    The arguments from `model_reference` on are the record every backend keeps ([`GalleryBackend`]).

    Example:
        ```python
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> gallery = rng.normal(size=(20, 16)).astype(np.float32)
        >>> gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)  # (20, 16), unit norm
        >>> paths = [f"gallery/{i:04d}_c{i % 2 + 1}s1_001051_00.jpg" for i in range(20)]
        >>> index = GalleryIndex(16, model_reference="user/lareid-market", model_fingerprint="abc123")
        >>> index.add(gallery, person_ids=np.arange(20) // 2, camera_ids=np.arange(20) % 2 + 1, paths=paths)
        >>> hits = index.search(gallery[:2], k=5)
        >>> hits.scores.shape, hits.paths[0][0]
        ((2, 5), 'gallery/0000_c1s1_001051_00.jpg')
        >>> index.save("gallery_index")
        >>> len(GalleryIndex.load("gallery_index"))
        20
        ```
    """

    backend = "faiss"

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
        **record: Any,
    ):
        super().__init__(dim, index_type, **record)
        if index_type not in INDEX_TYPES:
            raise InvalidInputError(f"`index_type` must be one of {list(INDEX_TYPES)}, got {index_type!r}.")
        if pq_m is None:
            pq_m = max(1, int(dim) // 2) if index_type == "ivfpq_refine" else _default_pq_m(int(dim))
        if index_type in ("ivfpq", "ivfpq_refine") and dim % pq_m:
            raise InvalidInputError(f"`pq_m` ({pq_m}) must divide `dim` ({dim}).")
        if index_type == "ivfpq_refine" and pq_m % 2:
            raise InvalidInputError(f"`pq_m` ({pq_m}) of an 'ivfpq_refine' index must be even (fast-scan codes).")
        if refine not in _REFINE_TYPES:
            raise InvalidInputError(f"`refine` must be 'SQ8', 'SQfp16' or 'Flat', got {refine!r}.")
        sizes = dict(nlist=nlist, nprobe=nprobe, pq_m=pq_m, pq_bits=pq_bits, refine_k_factor=refine_k_factor)
        sizes.update(hnsw_m=hnsw_m, ef_construction=ef_construction, ef_search=ef_search)
        for name, value in sizes.items():
            _check_size(value, name)
        check_rate(target_recall, "`target_recall`")
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
        self._index: Optional[faiss.Index] = None if self.needs_training else self._build_faiss_index()
        self._metadata: dict[str, list] = {name: [] for name in (*METADATA_FIELDS, ADDED_AT)}
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

    def _field(self, name: str) -> Optional[np.ndarray]:
        if name != ADDED_AT and (self._metadata_fields is None or name not in self._metadata_fields):
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

    def train(self, sample: Any) -> None:
        """Trains an `"ivf"`/`"ivfpq"` index on a sample of unit-norm embeddings `(n, dim)` (n >= `nlist`)."""
        if not self.needs_training:
            return
        if self.is_trained:
            raise InvalidInputError("The index is already trained.")
        array = self._check_embeddings(sample, "sample")
        index = self._build_faiss_index(len(array))
        minimum = max(self.settings["nlist"], 2 ** self.settings["pq_bits"] if "pq" in self.index_type else 1)
        if len(array) < minimum:
            raise InvalidInputError(
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

    def _append(
        self, embeddings: np.ndarray, fields: tuple[str, ...], columns: dict[str, np.ndarray], added_at: float
    ) -> None:
        """See [`GalleryBackend._append`]; trains an untrained index on `embeddings` first."""
        self._check_writable()
        columns = {**columns, ADDED_AT: np.full(len(embeddings), added_at, dtype=np.float64)}
        # Everything is checked: only now does the index change (a failed call leaves it as it was).
        if len(embeddings) and not self.is_trained:
            self.train(embeddings)
        if self._metadata_fields is None:  # the first add fixes the fields
            self._metadata_fields = fields
        if len(embeddings) == 0:
            return
        self._index.add(embeddings)
        for name, column in columns.items():
            self._metadata[name].append(column)
        if "paths" in columns:
            self._path_set.update(path for path in columns["paths"].tolist() if path)  # "" = unknown

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
            >>> import numpy as np
            >>> vectors = np.eye(8, dtype=np.float32)  # 8 unit-norm embeddings of width 8
            >>> batches = [{"embeddings": vectors[i : i + 4], "paths": [f"{j}.jpg" for j in range(i, i + 4)]} for i in (0, 4)]
            >>> index = GalleryIndex.load_or_create("stream_index", dim=8, model_fingerprint="abc123")
            >>> index.add_batches(batches, checkpoint_dir="stream_index", show_progress=False)
            8
            >>> resumed = GalleryIndex.load_or_create("stream_index", dim=8, model_fingerprint="abc123")
            >>> resumed.add_batches(batches, checkpoint_dir="stream_index", show_progress=False)  # all indexed already
            0
            ```

            With a model, the batches are `ReIDEncoder(model).iter_encode(dataset)`.
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
                embeddings, metadata = parse_batch(batch)
                if metadata.get("paths") is None:
                    if held_before:
                        raise InvalidInputError(
                            f"add_batches resumes by path, but this batch has no paths and the index already holds "
                            f"{held_before} entries: give each batch its paths, or add new embeddings with `add`."
                        )
                    keep = np.ones(len(embeddings), dtype=bool)
                else:
                    keep = self.unindexed(metadata["paths"])
                if not keep.all():
                    embeddings = np.asarray(embeddings)[keep]
                    metadata = {name: select(values, keep) for name, values in metadata.items()}
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

    def _check_writable(self) -> None:
        if self._memory_mapped:
            raise InvalidInputError(
                "This index was loaded with mmap=True and is read-only: load it without mmap to add or remove entries."
            )

    def matching(self, **criteria: Any) -> np.ndarray:
        """`(len(self),)` bool: the entries matching every given criterion (at least one must be given).

        Args:
            person_ids, camera_ids (sequence of `int`, *optional*): entries of these people / cameras.
            paths (sequence of `str`, *optional*): entries with these paths (as stored).
            older_than (`str`, `datetime` or `timedelta`, *optional*): entries added before this UTC time: an ISO 8601
                date-time (`"2026-01-31T00:00:00Z"`; no zone = UTC), a duration before now (`"30d"`, `"12h"`, `"90m"`,
                `"2w"`) or a `timedelta`.

        Raises:
            `ValueError`: no criterion given, or one on a field this index does not store. `TypeError`: an unknown
                criterion.
        """
        return matching_entries(removal_criteria(criteria), self._field, self.added_at, self._now())

    def remove(self, **criteria: Any) -> int:
        """Removes the entries matching every given criterion from the vectors and the metadata together.

        The index changes in memory (positions after a removed entry shift down, as if it had never been added);
        [`save`] writes it atomically with new checksums. Every index type removes: `"flat"` and the inverted-list
        types drop the codes, `"hnsw"` (no removal in FAISS) is rebuilt from its stored vectors.

        Args:
            criteria: `person_ids`, `paths`, `camera_ids` and/or `older_than`, as in [`matching`] (which raises for
                an unknown or missing criterion).

        Returns:
            `int`: the number of entries removed.

        Example:
            ```python
            >>> import numpy as np
            >>> index = GalleryIndex(4)
            >>> index.add(np.eye(4, dtype=np.float32), person_ids=[42, 42, 7, 8])
            >>> index.remove(person_ids=[42]), index.remove(older_than="30d"), len(index)
            (2, 0, 2)
            >>> index.save("gallery_index")
            ```
        """
        selected = self.matching(**criteria)
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
        for name in (*METADATA_FIELDS, ADDED_AT):
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

    def search(self, queries: Any, k: int = 10, *, provenance: Optional[Provenance] = None) -> SearchResult:
        """The `k` most similar gallery images of each query.

        Args:
            queries (`np.ndarray` or `torch.Tensor` of shape `(num_queries, dim)` or `(dim,)`): unit-norm embeddings.
            k (`int`, *optional*, defaults to 10): hits per query (at most the index size).
            provenance ([`Provenance`], *optional*): how the queries were embedded (`ReIDEncoder.provenance`),
                checked against the index's record by [`check_provenance`]: another model or other embedding
                settings raise, another runtime logs a warning. `None`: not checked.

        Returns:
            [`SearchResult`] with arrays of shape `(num_queries, min(k, len(self)))`.
        """
        array = self._checked_queries(queries, k, provenance)
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

    def save(self, directory: Union[str, os.PathLike]) -> None:
        """Saves atomically into `directory`: files go to a temporary sibling folder, are fsynced, then renamed.

        An interrupted save leaves the previous index (or none) in place, never a partial one: the previous index is
        moved aside to `.<name>.old-*` just before the new one is renamed into place, and moved back if that rename
        fails. Only a crash between the two renames leaves it aside; the next [`load`] or save puts it back.

        Raises:
            `FileExistsError`: `directory` exists and is not a gallery index (a file, a model or photo folder):
                it is never replaced.
            [`hf_lareid.utils.io.FolderBusyError`]: another process is writing this index.
        """
        if self._index is None:
            raise InvalidInputError("Nothing to save: the index has not been trained or filled yet.")
        check_index_target(directory)  # before the lock file is made beside a folder that is not ours
        with folder_lock(directory):
            recover(directory)
            check_index_target(directory)
            with atomic_folder(directory, replace_existing=True) as temporary:
                try:
                    self._write(temporary, directory)
                except (OSError, RuntimeError) as error:  # FAISS reports a failed write as a RuntimeError
                    raise write_error(error, directory) from error
        logger.info("Saved a gallery index of %d images to %s.", len(self), directory)

    def _write(self, folder: Path, directory: Union[str, os.PathLike]) -> None:
        """Writes the three files of a save into `folder` (the temporary sibling of `directory`)."""
        faiss.write_index(self._index, str(folder / INDEX_NAME))
        arrays = {name: self._field(name) for name in (self._metadata_fields or ())}
        np.savez(folder / METADATA_NAME, **arrays, **{ADDED_AT: self.added_at})
        config = {**self._config(directory), **data_file_records(folder, FAISS_FILES)}
        (folder / CONFIG_NAME).write_text(config_text(config))
        for name in (INDEX_NAME, METADATA_NAME, CONFIG_NAME):
            fault_point(f"write:{name}")

    @classmethod
    def load(cls, directory: Union[str, os.PathLike], *, mmap: bool = False, verify: bool = False) -> GalleryBackend:
        """Loads an index written by [`save`] (of either backend: a Qdrant folder opens as a `QdrantGalleryIndex`), checking its config's own checksum, its files and its sizes.

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
        return load_index(directory, mmap=mmap, verify=verify)

    @classmethod
    def open(cls, directory: Path, config: dict, *, mmap: bool = False, verify: bool = False) -> GalleryIndex:
        """The FAISS index saved in `directory`, whose config `storage.read_config` has checked (see [`load`])."""
        check_files(directory, config, verify)
        index = cls._from_config(directory, config)
        dim = index.dim
        # The two flags exclude each other: IO_FLAG_MMAP maps inverted lists, IO_FLAG_MMAP_IFC flat codes (flat,
        # hnsw storage, the refinement copy of ivfpq_refine, whose fast-scan lists stay in RAM).
        flags = 0
        if mmap:
            flags = faiss.IO_FLAG_MMAP if index.index_type in ("ivf", "ivfpq") else faiss.IO_FLAG_MMAP_IFC
        try:
            faiss_index = faiss.read_index(str(directory / INDEX_NAME), flags)
            with np.load(directory / METADATA_NAME, allow_pickle=False) as arrays:
                metadata = {name: arrays[name] for name in config["metadata_fields"]}
                added_at = arrays[ADDED_AT] if ADDED_AT in arrays.files else None
        except (RuntimeError, OSError, ValueError, KeyError) as error:
            raise CorruptIndexError(f"Cannot read the gallery index in {directory}: {error}") from error
        if added_at is not None:
            metadata[ADDED_AT] = added_at
        sizes = {faiss_index.ntotal, config.get("size"), *(len(values) for values in metadata.values())}
        if len(sizes) != 1 or faiss_index.d != dim:
            raise CorruptIndexError(
                f"The gallery index in {directory} is inconsistent (sizes {sorted(map(str, sizes))}, dimension "
                f"{faiss_index.d} vs {dim}): rebuild it."
            )
        index._apply_search_settings(faiss_index)
        index._index = faiss_index
        index._metadata = {name: [metadata[name]] if name in metadata else [] for name in (*METADATA_FIELDS, ADDED_AT)}
        index._memory_mapped = mmap
        if "paths" in metadata:
            index._path_set = {path for path in metadata["paths"].tolist() if path}
        return index


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


def _check_size(value: Optional[int], name: str) -> None:
    """A `ValueError` unless `value` is `None` or a positive whole number (a list count, a code width, a degree)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
        raise InvalidInputError(f"`{name}` must be a positive integer, got {value!r}.")
