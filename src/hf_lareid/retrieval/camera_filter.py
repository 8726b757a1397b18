"""The same-camera filter of re-identification searches: leave out what the query's own camera filmed.

Shared by `lareid search --query_camera`, `lareid demo` and `lareid serve`. As in the Market-1501 protocol (and
torchreid's ranked lists), a match only counts across cameras:

- query person known (a gallery or query image with its id): gallery images of that person taken by the query's
  camera are left out (the protocol's rule; it also removes the query image itself when it is in the gallery);
- query person unknown (an upload whose camera the user names): every gallery image of that camera is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

from ..embedding.provenance import Provenance
from ..utils.errors import InvalidInputError
from .backend import GalleryBackend, SearchResult

__all__ = ["same_camera_mask", "search_other_cameras"]

UNKNOWN = -1  # camera or person id not known


def same_camera_mask(index: GalleryBackend, query_camera_id: int, query_person_id: Optional[int] = None) -> np.ndarray:
    """`(len(index),)` bool: the gallery images a query filmed by `query_camera_id` must not be matched with.

    With `query_person_id` (not -1): that person's images from that camera; without it: all images from that camera.
    A camera of -1 (unknown) leaves nothing out.
    """
    if query_camera_id is None or int(query_camera_id) == UNKNOWN:
        return np.zeros(len(index), dtype=bool)
    if index.camera_ids is None:
        raise InvalidInputError("this gallery index stores no camera ids, so it cannot leave out the query's camera.")
    mask = index.camera_ids == int(query_camera_id)
    if query_person_id is not None and int(query_person_id) != UNKNOWN:
        if index.person_ids is None:
            raise InvalidInputError("this gallery index stores no person ids, so it cannot apply the same-camera rule.")
        mask &= index.person_ids == int(query_person_id)
    return mask


def search_other_cameras(
    index: GalleryBackend,
    queries: Any,
    k: int,
    query_camera_ids: Sequence[Optional[int]],
    query_person_ids: Optional[Sequence[Optional[int]]] = None,
    *,
    provenance: Optional[Provenance] = None,
) -> SearchResult:
    """[`GalleryIndex.search`] without the hits that [`same_camera_mask`] leaves out.

    Searches deep enough that each query keeps `k` hits where the gallery has them; every row is cut to the
    shortest row's length, so the arrays stay rectangular.

    Args:
        index: the gallery.
        queries (`(num_queries, dim)` unit-norm embeddings): the queries.
        k: hits per query.
        query_camera_ids: one camera id per query (`None` or -1: unknown, nothing left out).
        query_person_ids: one person id per query (`None` or -1: unknown, the whole camera is left out).
        provenance ([`Provenance`], *optional*): how the queries were embedded, checked against the index's record,
            as in `search`.

    Returns:
        [`SearchResult`] of shape `(num_queries, width)`, `width <= k`.

    Example:
        ```python
        >>> import numpy as np
        >>> from hf_lareid.retrieval import GalleryIndex
        >>> index = GalleryIndex(2)
        >>> index.add(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), person_ids=[7, 7, 8], camera_ids=[1, 2, 1])
        >>> hits = search_other_cameras(index, np.array([[1.0, 0.0]]), 2, query_camera_ids=[1], query_person_ids=[7])
        >>> hits.person_ids[0].tolist(), hits.camera_ids[0].tolist()  # person 7's camera-1 image is left out
        ([7, 8], [2, 1])
        ```
    """
    person_ids = [None] * len(query_camera_ids) if query_person_ids is None else list(query_person_ids)
    if len(person_ids) != len(query_camera_ids):
        raise InvalidInputError(f"{len(query_camera_ids)} query camera ids but {len(person_ids)} query person ids.")
    if index.filters_in_database:  # a Qdrant gallery applies the same rule as a database filter
        return index.search(
            queries, k, provenance=provenance, query_camera_ids=query_camera_ids, query_person_ids=person_ids
        )
    masks = [same_camera_mask(index, camera, person) for camera, person in zip(query_camera_ids, person_ids)]
    depth = min(len(index), k + max((int(mask.sum()) for mask in masks), default=0)) if len(index) else k
    hits = index.search(queries, k=depth, provenance=provenance)
    if len(masks) != len(hits.indices):
        raise InvalidInputError(f"{len(hits.indices)} queries but {len(masks)} query camera ids: give one per query.")
    kept = [
        [column for column, found in enumerate(row) if found >= 0 and not mask[found]][:k]
        for row, mask in zip(hits.indices, masks)
    ]
    width = min((len(columns) for columns in kept), default=0)
    columns = np.array([columns[:width] for columns in kept], dtype=np.int64).reshape(len(kept), width)
    rows = np.arange(len(kept))[:, None]

    def take(values: Optional[np.ndarray]) -> Optional[np.ndarray]:
        return None if values is None else values[rows, columns]

    return SearchResult(
        scores=take(hits.scores),
        indices=take(hits.indices),
        person_ids=take(hits.person_ids),
        camera_ids=take(hits.camera_ids),
        paths=None if hits.paths is None else [[hits.paths[row][c] for c in cols] for row, cols in enumerate(columns)],
        same_person=take(hits.same_person),
    )
