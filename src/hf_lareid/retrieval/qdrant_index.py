"""`QdrantGalleryIndex`: a gallery index whose vectors and metadata live in Qdrant, which shards and replicates.

A sibling of the FAISS [`GalleryIndex`]: both implement `backend.GalleryBackend` and share its record (model,
fingerprint, settings, threshold) and checks.

The index folder holds only `gallery_config.json` (the same config, checksum, lock and refusal rules as a FAISS
index, plus `"backend": "qdrant"` and the connection settings) and, in embedded mode, the Qdrant storage folder
`qdrant_storage/`. Each entry is one Qdrant point: id = a running integer, vector = the unit-norm embedding (dot
product = cosine), payload = `person_id`, `camera_id`, `path`, `added_at` (UTC POSIX seconds). The same-camera
exclusion, time windows and removals are Qdrant filters evaluated by the database. An API key is never written to
disk: the config records the name of the environment variable that holds it.

`GalleryIndex.load(directory)` opens either backend: it reads the backend the folder's config records.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from tqdm.auto import tqdm

from ..embedding.provenance import Provenance
from ..utils.errors import InvalidInputError
from ..utils.extras import require_extra
from ..utils.io import atomic_write_text, folder_lock
from .backend import ADDED_AT, GalleryBackend, SearchResult, parse_batch, select
from .retention import parse_older_than, removal_criteria
from .storage import (
    CONFIG_NAME,
    QDRANT_STORAGE_NAME,
    CorruptIndexError,
    check_index_target,
    config_text,
    recover,
    register_backend,
    write_error,
)

logger = logging.getLogger(__name__)

__all__ = ["QdrantGalleryIndex"]

DEFAULT_COLLECTION = "hf_lareid_gallery"
DEFAULT_API_KEY_ENV = "QDRANT_API_KEY"
_PAYLOAD_KEYS = {"person_ids": "person_id", "camera_ids": "camera_id", "paths": "path"}
_UPSERT_CHUNK = 1024
_QUERY_CHUNK = 64
_LOCAL_CLIENTS: dict[str, Any] = {}  # embedded storage folder -> its client (Qdrant allows one per folder)


def _qdrant():
    return require_extra("qdrant_client", "qdrant", "Qdrant gallery indexes")


@register_backend
class QdrantGalleryIndex(GalleryBackend):
    """A gallery index stored in a Qdrant collection (the API of [`GalleryIndex`]: add, search, remove, save/load).

    Args:
        dim (`int`): embedding width.
        path (`str` or `os.PathLike`, *optional*): an embedded (local, in-process) Qdrant storage folder.
        url (`str`, *optional*): a Qdrant server or cluster, e.g. `"https://qdrant.example.org:6333"`.
        api_key_env (`str`, *optional*, defaults to `"QDRANT_API_KEY"`): the environment variable holding the
            server's API key (read at connection time; only its name is saved).
        collection_name (`str`, *optional*, defaults to `"hf_lareid_gallery"`): the collection of this gallery.
        **kwargs: the model, verification, embedding-settings, `data_dir`, `norm_tolerance` and `clock` arguments
            of [`GalleryIndex`].

    Example:
        ```python
        >>> import numpy as np
        >>> from hf_lareid.retrieval import GalleryIndex
        >>> index = QdrantGalleryIndex(2, path="qdrant_storage", collection_name="market")  # or url="http://qdrant:6333"
        >>> embeddings = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # (3, 2), unit norm
        >>> index.add(embeddings, person_ids=[7, 7, 8], camera_ids=[1, 2, 1], paths=["a.jpg", "b.jpg", "c.jpg"])
        >>> index.save("market-index")
        >>> loaded = GalleryIndex.load("market-index")  # reads the backend the folder records
        >>> type(loaded).__name__
        'QdrantGalleryIndex'
        >>> loaded.search(embeddings[:1], k=2, query_camera_ids=[1]).paths[0]  # camera 1's own images left out
        ['b.jpg']
        ```
    """

    backend = "qdrant"
    filters_in_database = True  # `search_other_cameras` hands the same-camera rule to `search` as a Qdrant filter

    def __init__(
        self,
        dim: int,
        index_type: str = "qdrant",
        *,
        path: Optional[Union[str, os.PathLike]] = None,
        url: Optional[str] = None,
        api_key_env: str = DEFAULT_API_KEY_ENV,
        collection_name: str = DEFAULT_COLLECTION,
        **kwargs,
    ):
        _qdrant()
        if index_type != "qdrant":
            raise InvalidInputError(f"A QdrantGalleryIndex has index_type 'qdrant', got {index_type!r}.")
        if path is not None and url is not None:
            raise InvalidInputError("Give the Qdrant `path=` (embedded) or `url=` (server), not both.")
        super().__init__(dim, index_type, **kwargs)
        self.storage_path = None if path is None else os.path.abspath(Path(path).expanduser())
        self.url = url
        self.api_key_env = api_key_env
        self.collection_name = collection_name
        self._connection = None
        self._rows_cache: Optional[tuple[np.ndarray, dict[str, np.ndarray]]] = None
        self._next_id: Optional[int] = None

    # ---------------------------------------------------------------------------------------------------------------
    # Connection
    # ---------------------------------------------------------------------------------------------------------------

    @property
    def client(self):
        """The `qdrant_client.QdrantClient`, connected (and the collection created) on first use."""
        if self._connection is None:
            qdrant_client = _qdrant()
            if self.url is not None:
                client = qdrant_client.QdrantClient(url=self.url, api_key=os.environ.get(self.api_key_env))
            elif self.storage_path is not None:
                client = _LOCAL_CLIENTS.get(self.storage_path)
                if client is None:
                    client = _LOCAL_CLIENTS[self.storage_path] = qdrant_client.QdrantClient(path=self.storage_path)
            else:
                raise InvalidInputError("Say where the Qdrant collection lives: `path=` (embedded) or `url=` (server).")
            self._connection = client
            self._ensure_collection()
        return self._connection

    def _ensure_collection(self) -> None:
        models = _qdrant().models
        client = self._connection
        if client.collection_exists(self.collection_name):
            size = client.get_collection(self.collection_name).config.params.vectors.size
            if size != self.dim:
                raise InvalidInputError(
                    f"The Qdrant collection {self.collection_name!r} holds vectors of width {size}, not {self.dim}: "
                    "use another collection_name."
                )
            return
        client.create_collection(
            self.collection_name, vectors_config=models.VectorParams(size=self.dim, distance=models.Distance.DOT)
        )
        if self.url is not None:  # payload indexes make the filters fast on a server (embedded mode scans)
            for key, schema in (
                ("person_id", "INTEGER"),
                ("camera_id", "INTEGER"),
                ("path", "KEYWORD"),
                (ADDED_AT, "FLOAT"),
            ):
                client.create_payload_index(self.collection_name, key, getattr(models.PayloadSchemaType, schema))

    def __len__(self) -> int:
        if self._connection is None and self.storage_path is None and self.url is None:
            return 0
        return int(self.client.count(self.collection_name, exact=True).count)

    def __repr__(self) -> str:
        where = self.url or self.storage_path
        return (
            f"QdrantGalleryIndex(dim={self.dim}, collection={self.collection_name!r}, at={where!r}, size={len(self)})"
        )

    # ---------------------------------------------------------------------------------------------------------------
    # Metadata (read back from the payloads, in point-id order = the positions of `SearchResult.indices`)
    # ---------------------------------------------------------------------------------------------------------------

    def _rows(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """`(ids (n,) int64 sorted, {field: (n,) column})` of every point; cached until the next add or remove."""
        if self._rows_cache is None:
            points, offset = [], None
            while True:
                batch, offset = self.client.scroll(
                    self.collection_name, limit=10_000, offset=offset, with_payload=True, with_vectors=False
                )
                points.extend(batch)
                if offset is None:
                    break
            points.sort(key=lambda point: point.id)
            ids = np.array([point.id for point in points], dtype=np.int64)
            columns = {ADDED_AT: np.array([point.payload[ADDED_AT] for point in points], dtype=np.float64)}
            for name in self._metadata_fields or ():
                values = [point.payload[_PAYLOAD_KEYS[name]] for point in points]
                columns[name] = np.asarray(values, dtype=str) if name == "paths" else np.asarray(values, np.int64)
            self._rows_cache = ids, columns
        return self._rows_cache

    def _field(self, name: str) -> Optional[np.ndarray]:
        if name != ADDED_AT and (self._metadata_fields is None or name not in self._metadata_fields):
            return None
        return self._rows()[1][name]

    @property
    def indexed_paths(self) -> set[str]:
        return set(self.paths or ()) - {""}

    # ---------------------------------------------------------------------------------------------------------------
    # Adding
    # ---------------------------------------------------------------------------------------------------------------

    def _append(
        self, embeddings: np.ndarray, fields: tuple[str, ...], columns: dict[str, np.ndarray], added_at: float
    ) -> None:
        """See [`GalleryBackend._append`]: upserts Qdrant points with the metadata and `added_at` in their payloads."""
        models = _qdrant().models
        if self._metadata_fields is None:
            self._metadata_fields = fields
        if len(embeddings) == 0:
            return
        if self._next_id is None:
            ids = self._rows()[0]
            self._next_id = int(ids[-1]) + 1 if len(ids) else 0
        for start in range(0, len(embeddings), _UPSERT_CHUNK):
            stop = min(start + _UPSERT_CHUNK, len(embeddings))
            payloads = [
                {ADDED_AT: added_at, **{_PAYLOAD_KEYS[name]: column[row].item() for name, column in columns.items()}}
                for row in range(start, stop)
            ]
            self.client.upsert(
                self.collection_name,
                wait=True,
                points=models.Batch(
                    ids=list(range(self._next_id + start, self._next_id + stop)),
                    vectors=embeddings[start:stop].tolist(),
                    payloads=payloads,
                ),
            )
        self._next_id += len(embeddings)
        self._rows_cache = None

    def add_batches(
        self,
        batches: Iterable[Any],
        *,
        checkpoint_dir: Optional[Union[str, os.PathLike]] = None,
        checkpoint_every: int = 50_000,
        show_progress: bool = True,
    ) -> int:
        """Adds a stream of batches (the forms of [`GalleryIndex.add_batches`]), skipping paths already indexed.

        Every add is already stored in Qdrant; `checkpoint_dir` gets the config [`save`]d every `checkpoint_every`
        images and at the end. Returns the number of images added.
        """
        indexed = self.indexed_paths
        added = since_checkpoint = 0
        for batch in tqdm(batches, desc="Indexing", unit="batch", disable=not show_progress):
            embeddings, metadata = parse_batch(batch)
            if indexed and metadata.get("paths") is not None:
                keep = np.array([path not in indexed for path in metadata["paths"]], dtype=bool)
                embeddings = np.asarray(embeddings)[keep]
                metadata = {name: select(values, keep) for name, values in metadata.items()}
            if len(embeddings):
                self.add(embeddings, **metadata)
                added += len(embeddings)
                since_checkpoint += len(embeddings)
            if checkpoint_dir is not None and since_checkpoint >= checkpoint_every:
                self.save(checkpoint_dir)
                since_checkpoint = 0
        if checkpoint_dir is not None:
            self.save(checkpoint_dir)
        return added

    # ---------------------------------------------------------------------------------------------------------------
    # Filters, erasure and search
    # ---------------------------------------------------------------------------------------------------------------

    def _selection_filter(self, criteria: dict[str, Any]):
        """The Qdrant filter of the entries matching every given criterion (those of [`GalleryIndex.matching`])."""
        models = _qdrant().models
        criteria = removal_criteria(criteria)
        conditions = []
        for name in ("person_ids", "camera_ids", "paths"):
            values = criteria.get(name)
            if values is None:
                continue
            if name not in (self._metadata_fields or ()):
                raise InvalidInputError(f"This index stores no {name}: it cannot select entries by them.")
            wanted = [str(v) for v in values] if name == "paths" else [int(v) for v in values]
            conditions.append(models.FieldCondition(key=_PAYLOAD_KEYS[name], match=models.MatchAny(any=wanted)))
        if "older_than" in criteria:
            cutoff = parse_older_than(criteria["older_than"], self._now()).timestamp()
            conditions.append(models.FieldCondition(key=ADDED_AT, range=models.Range(lt=cutoff)))
        return models.Filter(must=conditions)

    def matching(self, **criteria: Any) -> np.ndarray:
        """`(len(self),)` bool: the entries matching every given criterion (those of [`GalleryIndex.matching`]),
        selected by a Qdrant filter."""
        selection = self._selection_filter(criteria)
        selected, offset = [], None
        while True:
            batch, offset = self.client.scroll(
                self.collection_name, scroll_filter=selection, limit=10_000, offset=offset, with_payload=False
            )
            selected.extend(point.id for point in batch)
            if offset is None:
                break
        return np.isin(self._rows()[0], np.asarray(selected, dtype=np.int64))

    def remove(self, **criteria: Any) -> int:
        """Deletes the points matching every given criterion (a Qdrant filter; see [`GalleryIndex.remove`])."""
        models = _qdrant().models
        selection = self._selection_filter(criteria)
        count = int(self.client.count(self.collection_name, count_filter=selection, exact=True).count)
        if count:
            self.client.delete(self.collection_name, points_selector=models.FilterSelector(filter=selection), wait=True)
            self._rows_cache = None
        logger.info("Removed %d entries from the Qdrant gallery %r.", count, self.collection_name)
        return count

    def _query_filter(self, camera_id: Optional[int], person_id: Optional[int], added_after: Optional[float]):
        """The filter of one query: the same-camera rule of `same_camera_mask` and the time window, or `None`."""
        models = _qdrant().models
        must, must_not = [], []
        if camera_id is not None and int(camera_id) != -1:
            if "camera_ids" not in (self._metadata_fields or ()):
                raise InvalidInputError(
                    "this gallery index stores no camera ids, so it cannot leave out the query's camera."
                )
            same = [models.FieldCondition(key="camera_id", match=models.MatchValue(value=int(camera_id)))]
            if person_id is not None and int(person_id) != -1:
                if "person_ids" not in (self._metadata_fields or ()):
                    raise InvalidInputError(
                        "this gallery index stores no person ids, so it cannot apply the same-camera rule."
                    )
                same.append(models.FieldCondition(key="person_id", match=models.MatchValue(value=int(person_id))))
            must_not.append(models.Filter(must=same))
        if added_after is not None:
            must.append(models.FieldCondition(key=ADDED_AT, range=models.Range(gte=added_after)))
        return models.Filter(must=must or None, must_not=must_not or None) if must or must_not else None

    def search(
        self,
        queries: Any,
        k: int = 10,
        *,
        provenance: Optional[Provenance] = None,
        query_camera_ids: Optional[Sequence[Optional[int]]] = None,
        query_person_ids: Optional[Sequence[Optional[int]]] = None,
        added_after: Union[None, str, datetime] = None,
    ) -> SearchResult:
        """The `k` most similar gallery images of each query, filtered in Qdrant.

        Args:
            queries, k, provenance: as in [`GalleryIndex.search`].
            query_camera_ids, query_person_ids (one per query, *optional*): leave out the same-camera images, as
                [`search_other_cameras`] does (rows are cut to the shortest row, so arrays stay rectangular).
            added_after (ISO 8601 `str` or `datetime`, *optional*): only entries added at or after this UTC time.

        Returns:
            [`SearchResult`] of shape `(num_queries, width)`, `width <= k`; `indices` are positions in point-id order.
        """
        models = _qdrant().models
        array = self._checked_queries(queries, k, provenance)
        size = len(self)
        cameras = [None] * len(array) if query_camera_ids is None else list(query_camera_ids)
        people = [None] * len(array) if query_person_ids is None else list(query_person_ids)
        if not len(cameras) == len(people) == len(array):
            raise InvalidInputError(
                f"{len(array)} queries, {len(cameras)} query camera ids, {len(people)} query person ids: "
                "give one per query."
            )
        after = None if added_after is None else parse_older_than(added_after, self._now()).timestamp()
        requests = [
            models.QueryRequest(
                query=row.tolist(),
                filter=self._query_filter(camera, person, after),
                limit=min(int(k), size),
                with_payload=True,
            )
            for row, camera, person in zip(array, cameras, people)
        ]
        rows = []
        for start in range(0, len(requests), _QUERY_CHUNK):
            answers = self.client.query_batch_points(
                self.collection_name, requests=requests[start : start + _QUERY_CHUNK]
            )
            rows.extend(answer.points for answer in answers)
        width = min(len(points) for points in rows)
        rows = [points[:width] for points in rows]
        ids = self._rows()[0]
        hit_ids = np.array([[point.id for point in points] for points in rows], dtype=np.int64).reshape(
            len(rows), width
        )
        result = SearchResult(
            scores=np.array([[point.score for point in points] for points in rows], np.float32).reshape(hit_ids.shape),
            indices=np.searchsorted(ids, hit_ids).astype(np.int64),
        )
        for name in self._metadata_fields or ():
            values = [[point.payload[_PAYLOAD_KEYS[name]] for point in points] for points in rows]
            setattr(result, name, values if name == "paths" else np.array(values, np.int64).reshape(hit_ids.shape))
        if self.verification_threshold is not None:
            result.same_person = result.scores > self.verification_threshold
        return result

    # ---------------------------------------------------------------------------------------------------------------
    # Saving and loading (the connection settings and the config; the data is in Qdrant already)
    # ---------------------------------------------------------------------------------------------------------------

    def _connection_config(self, directory: Path) -> dict:
        path = self.storage_path
        if path is not None and Path(path).parent == Path(os.path.abspath(directory)):
            path = Path(path).name  # inside the index folder: recorded relative, so the folder can move
        return {"path": path, "url": self.url, "api_key_env": self.api_key_env, "collection_name": self.collection_name}

    def save(self, directory: Union[str, os.PathLike]) -> None:
        """Writes `gallery_config.json` (settings, connection, own checksum) atomically into `directory`.

        The points are stored by Qdrant as they are added or removed; the API key is never written (only the name of
        its environment variable). Refuses a `directory` that is not a gallery index, as [`GalleryIndex.save`].
        """
        directory = Path(directory)
        check_index_target(directory)
        with folder_lock(directory):
            recover(directory)
            check_index_target(directory)
            config = {**self._config(directory), "qdrant": self._connection_config(directory), "sha256": {}}
            try:
                directory.mkdir(parents=True, exist_ok=True)
                atomic_write_text(directory / CONFIG_NAME, config_text(config))
            except OSError as error:
                raise write_error(error, directory) from error
        logger.info("Saved the Qdrant gallery index config (%d images) to %s.", config["size"], directory)

    @classmethod
    def open(cls, directory: Path, config: dict, *, mmap: bool = False, verify: bool = False) -> QdrantGalleryIndex:
        """The index a config read by `GalleryIndex.load` describes, connected to its collection (`mmap` and `verify`
        concern files of a FAISS index: Qdrant keeps and checks its own storage)."""
        connection = config.get("qdrant") or {}
        index = cls._from_config(directory, config)
        path = connection.get("path")
        index.storage_path = None if path is None else os.path.abspath(Path(directory) / path)
        index.url = connection.get("url")
        index.api_key_env = connection.get("api_key_env") or DEFAULT_API_KEY_ENV
        index.collection_name = connection.get("collection_name") or DEFAULT_COLLECTION
        if index.storage_path is not None and not Path(index.storage_path).is_dir() and config["size"]:
            raise CorruptIndexError(
                f"The Qdrant storage {index.storage_path} of the gallery index in {directory} is missing: restore it."
            )
        return index

    @classmethod
    def load_or_create(cls, directory: Union[str, os.PathLike], dim: int, **kwargs) -> QdrantGalleryIndex:
        """As [`GalleryIndex.load_or_create`]; a new index's config is saved at once (its folder is then an index).

        Without `url=` or `path=`, the embedded storage goes into `directory/qdrant_storage`.
        """
        if kwargs.get("url") is None and kwargs.get("path") is None:
            kwargs["path"] = Path(directory) / QDRANT_STORAGE_NAME
        index = super().load_or_create(directory, dim, **kwargs)
        if not (Path(directory) / CONFIG_NAME).is_file():
            index.save(directory)
        return index
