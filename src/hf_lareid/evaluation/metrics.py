"""Re-identification metrics: CMC, mAP and mINP under the Market-1501, CUHK03 and no-camera protocols.

Everything here works on arrays (features, person ids, camera ids) and knows no model. The main entry point is
[`evaluate_reid`]; [`evaluate_distance_matrix`] does the same from a precomputed distance matrix (e.g. after
re-ranking). The input checks are in `checks.py`, the distances in `distance.py`, the ranking in `ranking.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np

from ..utils.errors import InvalidInputError
from .checks import ArrayLike, check_choice, check_features, check_labels, check_max_rank, check_paths, to_numpy
from .distance import DEFAULT_MEMORY_BUDGET_MB, METRICS, DistanceBlocks
from .ranking import PROTOCOLS, evaluate_blocks
from .rerank import re_rank

__all__ = ["evaluate_distance_matrix", "evaluate_reid"]


def _check_labels_for_protocol(
    protocol: str,
    num_query: int,
    num_gallery: int,
    query_ids: ArrayLike,
    gallery_ids: ArrayLike,
    query_cams: Optional[ArrayLike],
    gallery_cams: Optional[ArrayLike],
    query_paths: Optional[Sequence[str]],
    gallery_paths: Optional[Sequence[str]],
) -> tuple:
    check_choice(protocol, "protocol", PROTOCOLS)
    needs_cams = protocol != "no-camera"
    if needs_cams and (query_cams is None or gallery_cams is None):
        raise InvalidInputError(
            f"protocol={protocol!r} needs `query_cams` and `gallery_cams`. Without camera ids, use "
            "protocol='no-camera'."
        )
    return (
        check_labels(query_ids, "query_ids", num_query),
        check_labels(gallery_ids, "gallery_ids", num_gallery),
        check_labels(query_cams, "query_cams", num_query, required=needs_cams) if needs_cams else None,
        check_labels(gallery_cams, "gallery_cams", num_gallery, required=needs_cams) if needs_cams else None,
        check_paths(query_paths, "query_paths", num_query),
        check_paths(gallery_paths, "gallery_paths", num_gallery),
    )


def evaluate_reid(
    query_features: ArrayLike,
    gallery_features: ArrayLike,
    query_ids: ArrayLike,
    gallery_ids: ArrayLike,
    query_cams: Optional[ArrayLike] = None,
    gallery_cams: Optional[ArrayLike] = None,
    max_rank: int = 50,
    metric: str = "cosine",
    protocol: str = "market1501",
    rerank: bool = False,
    *,
    query_paths: Optional[Sequence[str]] = None,
    gallery_paths: Optional[Sequence[str]] = None,
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
    num_repeats: int = 10,
    seed: int = 0,
    show_progress: bool = True,
    norm_tolerance: Optional[float] = None,
) -> dict:
    """Standard re-identification metrics (CMC, mAP, mINP) of query features ranked against gallery features.

    Protocols (which gallery images count for a query):
    - `"market1501"` (default, as the Market-1501 paper, torchreid and fast-reid): gallery images of the same person
      taken by the same camera are removed, junk images (person id -1) are removed, distractors (person id 0) stay
      as negatives. Queries without any remaining match are skipped and counted in `num_skipped_queries`.
    - `"cuhk03"`: torchreid's single-gallery-shot CMC: the same removals, then `num_repeats` times one random gallery
      image per identity (seeded by `seed`), CMC averaged over repeats; mAP and mINP use the full ranking.
    - `"no-camera"`: for data without camera ids. Only junk and the query image itself are removed. The query image
      is recognised by its path (pass `query_paths` and `gallery_paths`) or, when the query and gallery feature
      arrays are the same object (`evaluate_reid(x, x, ids, ids, protocol="no-camera")`), by its index. Without
      either, a query that is also in the gallery matches itself at rank 1.
    Paths, when given, exclude the query image itself under every protocol.

    mAP is the mean over queries of the average precision; mINP (Ye et al., "Deep Learning for Person
    Re-identification: A Survey and Outlook") the mean of `num_positives / (rank of the hardest positive)`.
    Equal distances are ordered by gallery index.

    Args:
        query_features (`np.ndarray` or `torch.Tensor` of shape `(num_query, dim)`): query embeddings.
        gallery_features (`np.ndarray` or `torch.Tensor` of shape `(num_gallery, dim)`): gallery embeddings.
        query_ids (array of shape `(num_query,)`): person ids of the queries.
        gallery_ids (array of shape `(num_gallery,)`): person ids of the gallery (-1 junk, 0 distractor).
        query_cams (array of shape `(num_query,)`, *optional*): camera ids; required unless `protocol="no-camera"`.
        gallery_cams (array of shape `(num_gallery,)`, *optional*): camera ids; required unless
            `protocol="no-camera"`.
        max_rank (`int`, *optional*, defaults to 50): length of the returned CMC curve.
        metric (`str`, *optional*, defaults to `"cosine"`): `"cosine"` or `"euclidean"`.
        protocol (`str`, *optional*, defaults to `"market1501"`): `"market1501"`, `"cuhk03"` or `"no-camera"`.
        rerank (`bool`, *optional*, defaults to `False`): rank by k-reciprocal re-ranked distances
            ([`re_rank`] with its defaults; cosine normalises the features first).
        query_paths (`list[str]`, *optional*): image paths of the queries, to exclude a query's own image.
        gallery_paths (`list[str]`, *optional*): image paths of the gallery.
        memory_budget_mb (`float`, *optional*, defaults to 512): peak working memory while ranking, besides the
            inputs (and the `(num_query, num_gallery)` re-ranked distances when `rerank=True`); queries are ranked in
            chunks sized for the worst case (about 40 bytes per query x gallery pair plus 128 per gallery image).
            At least one query is ranked at a time, so budgets under ~170 bytes x num_gallery are exceeded.
        num_repeats (`int`, *optional*, defaults to 10): repeats of the `"cuhk03"` gallery sampling.
        seed (`int`, *optional*, defaults to 0): seed of the `"cuhk03"` gallery sampling.
        show_progress (`bool`, *optional*, defaults to `True`): show a progress bar over query chunks.
        norm_tolerance (`float`, *optional*): refuse feature rows whose norm differs from 1 by more (model
            embeddings are unit-norm; `evaluate_model` passes 1e-3). All-zero rows are refused with `metric="cosine"`.

    Returns:
        `dict` with `cmc` (`np.ndarray` of shape `(max_rank,)`, fractions), `rank1`, `rank5`, `rank10`, `mAP`,
        `mINP` (floats in [0, 1]), `num_queries` (queries evaluated) and `num_skipped_queries`.

    Raises:
        `ValueError`: empty or mismatched inputs, NaN or all-zero features, different feature widths, or no query with a valid
        match (the message names `protocol="no-camera"` when camera ids are the reason).

    Example:
        ```python
        >>> from hf_lareid.evaluation import evaluate_reid
        >>> query = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> gallery = np.array([[0.6, 0.8], [1.0, 0.0], [0.0, 1.0]])  # person 2's match ranks second for person 1
        >>> results = evaluate_reid(query, gallery, [1, 2], [2, 1, 2], [1, 1], [2, 2, 2], max_rank=3)
        >>> float(results["rank1"]), float(results["mAP"]), results["cmc"].shape
        (1.0, 1.0, (3,))
        ```
    """
    check_choice(metric, "metric", METRICS)
    check_max_rank(max_rank)
    checks = {"norm_tolerance": norm_tolerance, "reject_zero": metric == "cosine"}
    query = check_features(query_features, "query_features", **checks)
    same_set = gallery_features is query_features
    gallery = query if same_set else check_features(gallery_features, "gallery_features", dim=query.shape[1], **checks)
    labels = _check_labels_for_protocol(
        protocol, len(query), len(gallery), query_ids, gallery_ids, query_cams, gallery_cams, query_paths, gallery_paths
    )
    if rerank:
        if metric == "cosine":
            query = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
            gallery = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
        distance_blocks = _matrix_blocks(re_rank(query, gallery, memory_budget_mb=memory_budget_mb))
    else:
        distance_blocks = DistanceBlocks(query, gallery, metric)
    return evaluate_blocks(
        distance_blocks,
        *labels,
        same_set and protocol == "no-camera",
        max_rank,
        protocol,
        memory_budget_mb,
        num_repeats,
        seed,
        show_progress,
    )


def _matrix_blocks(matrix: np.ndarray) -> Callable[[int, int], np.ndarray]:
    """The query rows `start:stop` of a precomputed `(num_query, num_gallery)` distance matrix, as `evaluate_blocks`
    reads distances (a copy, which the ranking may modify)."""

    def distance_blocks(start: int, stop: int) -> np.ndarray:
        return matrix[start:stop].copy()

    return distance_blocks


def evaluate_distance_matrix(
    distances: ArrayLike,
    query_ids: ArrayLike,
    gallery_ids: ArrayLike,
    query_cams: Optional[ArrayLike] = None,
    gallery_cams: Optional[ArrayLike] = None,
    max_rank: int = 50,
    protocol: str = "market1501",
    *,
    query_paths: Optional[Sequence[str]] = None,
    gallery_paths: Optional[Sequence[str]] = None,
    exclude_same_index: bool = False,
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
    num_repeats: int = 10,
    seed: int = 0,
    show_progress: bool = True,
) -> dict:
    """[`evaluate_reid`] from a precomputed `(num_query, num_gallery)` distance matrix (smaller = more similar).

    Same protocols and results; `exclude_same_index=True` excludes gallery item `i` for query `i` (query set ==
    gallery set, for `protocol="no-camera"`).

    Example:
        ```python
        >>> distances = np.array([[0.1, 0.9, 0.5], [0.8, 0.2, 0.7]])  # e.g. from `re_rank`
        >>> results = evaluate_distance_matrix(distances, [1, 2], [1, 2, 3], [1, 1], [2, 2, 2], max_rank=3)
        >>> float(results["rank1"]), float(results["mAP"])
        (1.0, 1.0)
        ```
    """
    check_max_rank(max_rank)
    matrix = to_numpy(distances)
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise InvalidInputError(
            f"`distances` must be a non-empty (num_query, num_gallery) matrix, got shape {matrix.shape}."
        )
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    if not np.isfinite(matrix).all():
        raise InvalidInputError("`distances` contains NaN or infinite values.")
    labels = _check_labels_for_protocol(
        protocol,
        matrix.shape[0],
        matrix.shape[1],
        query_ids,
        gallery_ids,
        query_cams,
        gallery_cams,
        query_paths,
        gallery_paths,
    )
    return evaluate_blocks(
        _matrix_blocks(matrix),
        *labels,
        exclude_same_index,
        max_rank,
        protocol,
        memory_budget_mb,
        num_repeats,
        seed,
        show_progress,
    )
