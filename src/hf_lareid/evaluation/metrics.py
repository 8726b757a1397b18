"""Re-identification metrics: CMC, mAP and mINP under the Market-1501, CUHK03 and no-camera protocols.

Everything here works on arrays (features, person ids, camera ids) and knows no model. The main entry point is
[`evaluate_reid`]; [`evaluate_distance_matrix`] does the same from a precomputed distance matrix (e.g. after
re-ranking) and [`evaluate_reid_many`] evaluates several named query/gallery pairs (cross-domain evaluation).

Ranking rule: for each query, the gallery is ordered by distance (smallest first); equal distances keep gallery
order (a stable sort by distance, then gallery index).

How it stays fast and bounded in memory: queries are processed in chunks whose distance block fits a memory budget,
and no gallery row is ever fully sorted. The rank of a positive (a valid gallery item of the query's identity) is the
number of valid gallery items that come before it, so one comparison pass counts the items closer than the easiest
positive, and only the few items between the easiest and the hardest positive are ordered exactly. The CMC needs the
rank of the first positive and mAP/mINP the ranks of all positives, which this gives directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

__all__ = [
    "JUNK_ID",
    "DISTRACTOR_ID",
    "PROTOCOLS",
    "METRICS",
    "ReIDSplit",
    "compute_distance_matrix",
    "evaluate_distance_matrix",
    "evaluate_reid",
    "evaluate_reid_many",
    "format_results_table",
]

JUNK_ID = -1
"""Person id of junk gallery images (Market-1501 convention): removed from the gallery for every query."""
DISTRACTOR_ID = 0
"""Person id of distractor gallery images (Market-1501 convention): kept in the gallery as negatives."""
PROTOCOLS = ("market1501", "cuhk03", "no-camera")
METRICS = ("cosine", "euclidean")

# Working memory of one chunk of B queries against G gallery items, besides the inputs. Per (query, gallery) pair:
# the float32 distance block (4 bytes) plus, in the worst case (every gallery item a positive and the ranking window
# spanning the whole gallery), the int64 sort keys of the positives (8) and of the window items (8) and one int64
# array being built or searched (8) with its float32/int32 scratch (4): 32 bytes, measured with tracemalloc
# (tests/evaluation/test_metrics.py::test_memory_budget_holds_in_the_worst_case), rounded up to 40 for numpy's
# small temporaries. Per gallery item, whatever the chunk size: gallery-sized vectors (norms, per-row scratch of the
# CUHK03 sampling, path lookups), reserved from the budget.
_BYTES_PER_PAIR = 40
_BYTES_PER_GALLERY_ITEM = 128
_DEFAULT_MEMORY_BUDGET_MB = 512.0

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]


# --------------------------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------------------------


def _to_numpy(values: ArrayLike) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        if values.dtype == torch.bfloat16:
            values = values.float()
        return values.numpy()
    return np.asarray(values)


def check_features(
    features: ArrayLike,
    name: str,
    dim: Optional[int] = None,
    norm_tolerance: Optional[float] = None,
    reject_zero: bool = False,
) -> np.ndarray:
    """Returns `features` as a C-contiguous float32 array of shape `(n, dim)`, or raises a `ValueError` naming `name`.

    Rejects empty sets, a wrong number of dimensions, a feature width different from `dim` and non-finite values;
    with `reject_zero`, all-zero rows (no direction: every cosine ties); with `norm_tolerance`, rows whose norm
    differs from 1 by more (embeddings are unit-norm; another norm means a broken extraction).
    """
    array = _to_numpy(features)
    if array.ndim != 2:
        raise ValueError(f"`{name}` must have shape (num_images, feature_dim), got shape {tuple(array.shape)}.")
    if array.shape[0] == 0:
        raise ValueError(f"`{name}` is empty: at least one image is needed.")
    if dim is not None and array.shape[1] != dim:
        raise ValueError(
            f"`{name}` has feature dimension {array.shape[1]}, expected {dim} (the other feature set's width): "
            "were both extracted with the same model?"
        )
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"`{name}` must hold real numbers, got dtype {array.dtype}.")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array).all(axis=1)).sum())
        raise ValueError(f"`{name}` contains NaN or infinite values in {bad} row(s); check the feature extraction.")
    norms = np.linalg.norm(array, axis=1)
    if (reject_zero or norm_tolerance is not None) and (norms < 1e-12).any():
        raise ValueError(
            f"`{name}` has {int((norms < 1e-12).sum())} all-zero row(s) (row {int(np.argmin(norms))}): they match "
            "nothing; check the feature extraction."
        )
    if norm_tolerance is not None and np.abs(norms - 1.0).max() > norm_tolerance:
        worst = int(np.abs(norms - 1.0).argmax())
        raise ValueError(
            f"`{name}` must be unit-norm (row {worst} has norm {norms[worst]:.4f}): normalise them first, e.g. "
            "`x / np.linalg.norm(x, axis=1, keepdims=True)`."
        )
    return array


def check_labels(values: Optional[ArrayLike], name: str, length: int, required: bool = True) -> Optional[np.ndarray]:
    """Returns `values` as an int64 array of shape `(length,)` (or `None` when absent and not required)."""
    if values is None:
        if required:
            raise ValueError(f"`{name}` is required.")
        return None
    array = _to_numpy(values)
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional, got shape {tuple(array.shape)}.")
    if array.shape[0] != length:
        raise ValueError(f"`{name}` has {array.shape[0]} entries but there are {length} feature rows: they must match.")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not (np.issubdtype(array.dtype, np.floating) and np.array_equal(array, np.round(array))):
            raise ValueError(f"`{name}` must hold integers, got dtype {array.dtype}.")
    return array.astype(np.int64, copy=False)


def _check_paths(paths: Optional[Sequence[str]], name: str, length: int) -> Optional[np.ndarray]:
    if paths is None:
        return None
    array = np.asarray([str(path) for path in paths])
    if array.shape[0] != length:
        raise ValueError(f"`{name}` has {array.shape[0]} entries but there are {length} feature rows: they must match.")
    return array


def _check_choice(value: str, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}, got {value!r}.")
    return value


def _chunk_size(num_gallery: int, memory_budget_mb: float) -> int:
    if memory_budget_mb <= 0:
        raise ValueError(f"`memory_budget_mb` must be positive, got {memory_budget_mb}.")
    available = memory_budget_mb * 2**20 - num_gallery * _BYTES_PER_GALLERY_ITEM
    return max(1, int(available // (num_gallery * _BYTES_PER_PAIR)))


# --------------------------------------------------------------------------------------------------------------------
# Distances
# --------------------------------------------------------------------------------------------------------------------


class _DistanceBlocks:
    """Computes rows `[start, stop)` of the query x gallery distance matrix as a float32 array `(stop - start, G)`.

    Cosine distance is `1 - cos(q, g)`; "euclidean" is the squared Euclidean distance (same order as the Euclidean
    distance, cheaper). Both are clamped at 0. Works on the caller's arrays without normalised copies of the gallery.
    """

    def __init__(self, query_features: np.ndarray, gallery_features: np.ndarray, metric: str):
        self.metric = metric
        self.query = query_features
        self.gallery_t = gallery_features.T  # (dim, G) view, no copy
        gallery_sq_norms = np.einsum("ij,ij->i", gallery_features, gallery_features)
        if metric == "cosine":
            self.gallery_scale = -1.0 / np.maximum(np.sqrt(gallery_sq_norms), 1e-12)  # (G,)
        else:
            self.gallery_sq_norms = gallery_sq_norms

    def __call__(self, start: int, stop: int) -> np.ndarray:
        query = self.query[start:stop]
        if self.metric == "cosine":
            query = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
            distances = query @ self.gallery_t  # cosine similarity, (B, G)
            distances *= self.gallery_scale
            distances += 1.0
        else:
            distances = query @ self.gallery_t
            distances *= -2.0
            distances += self.gallery_sq_norms
            distances += np.einsum("ij,ij->i", query, query)[:, None]
        return np.maximum(distances, 0.0, out=distances)


def compute_distance_matrix(
    query_features: ArrayLike,
    gallery_features: ArrayLike,
    metric: str = "cosine",
    memory_budget_mb: float = _DEFAULT_MEMORY_BUDGET_MB,
) -> np.ndarray:
    """Distance matrix between query and gallery features, exactly as [`evaluate_reid`] ranks with it.

    Args:
        query_features (`np.ndarray` or `torch.Tensor` of shape `(num_query, dim)`): query embeddings.
        gallery_features (`np.ndarray` or `torch.Tensor` of shape `(num_gallery, dim)`): gallery embeddings.
        metric (`str`, *optional*, defaults to `"cosine"`): `"cosine"` (`1 - cosine similarity`) or `"euclidean"`
            (squared Euclidean distance, which orders like the Euclidean distance). Both are clamped at 0.
        memory_budget_mb (`float`, *optional*, defaults to 512): working memory per chunk of queries.

    Returns:
        `np.ndarray` of shape `(num_query, num_gallery)`, float32.

    Example:
        ```python
        >>> compute_distance_matrix(np.eye(3), np.eye(3)).shape
        (3, 3)
        ```
    """
    _check_choice(metric, "metric", METRICS)
    query = check_features(query_features, "query_features")
    gallery = check_features(gallery_features, "gallery_features", dim=query.shape[1])
    blocks = _DistanceBlocks(query, gallery, metric)
    chunk = _chunk_size(gallery.shape[0], memory_budget_mb)
    return np.concatenate(
        [blocks(start, min(start + chunk, query.shape[0])) for start in range(0, query.shape[0], chunk)]
    )


# --------------------------------------------------------------------------------------------------------------------
# Ranking core
# --------------------------------------------------------------------------------------------------------------------


def _group_lookup(gallery_keys: np.ndarray, query_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All `(query_row, gallery_col)` pairs with `gallery_keys[col] == query_keys[row]`, without a dense mask."""
    order = np.argsort(gallery_keys, kind="stable")
    sorted_keys = gallery_keys[order]
    low = np.searchsorted(sorted_keys, query_keys, side="left")
    counts = np.searchsorted(sorted_keys, query_keys, side="right") - low
    rows = np.repeat(np.arange(len(query_keys)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(low, counts)
    return rows, order[offsets]


def _sort_keys(distances: np.ndarray, flat: np.ndarray, gallery_bits: int) -> np.ndarray:
    """Int64 keys ordering the items `flat` (flat indices into the C-contiguous `(B, G)` block `distances`) by row,
    then distance, then gallery column: `row << (32 + gallery_bits) | monotone(distance) << gallery_bits | column`.

    The keys are written into `flat`'s buffer (which is returned), so the working memory is the keys plus 12 bytes
    of scratch per item. `monotone` maps float32 to [0, 2**32) with integer order == float order (-0.0 == 0.0).
    """
    num_gallery = distances.shape[1]
    values = distances.reshape(-1)[flat]
    values += np.float32(0.0)  # -0.0 -> +0.0
    bits = values.view(np.int32)
    flip = bits >> 31  # negative floats: flip the magnitude bits so that the signed integer order is the float order
    flip &= 0x7FFFFFFF
    bits ^= flip
    del flip
    rows = flat // num_gallery
    np.remainder(flat, num_gallery, out=flat)  # flat -> column
    rows <<= 32 + gallery_bits
    flat |= rows
    del rows
    monotone = bits.astype(np.int64)
    del values, bits
    monotone += 2**31
    monotone <<= gallery_bits
    flat |= monotone
    return flat


@dataclass
class _GalleryLabels:
    ids: np.ndarray
    cams: Optional[np.ndarray]
    path_codes: Optional[np.ndarray]
    junk_cols: np.ndarray


class _Ranker:
    """Accumulates positive ranks per query chunk; shared by all protocols."""

    def __init__(self, protocol: str, hist_length: int, num_repeats: int, seed: int):
        self.protocol = protocol
        self.first_match_hist = np.zeros(hist_length + 1, dtype=np.float64)  # last bin: beyond hist_length
        self.average_precisions: list[np.ndarray] = []
        self.inverse_negative_penalties: list[np.ndarray] = []
        self.num_skipped = 0
        self.num_repeats = num_repeats
        self.rng = np.random.default_rng(seed)

    def add_chunk(
        self,
        distances: np.ndarray,
        query_ids: np.ndarray,
        query_cams: Optional[np.ndarray],
        query_path_codes: Optional[np.ndarray],
        query_offset: int,
        gallery: _GalleryLabels,
        exclude_same_index: bool,
    ) -> None:
        """`distances`: `(B, G)` float32 array for queries `query_offset .. query_offset + B` (modified in place).

        Working memory: see `_BYTES_PER_PAIR`; every large temporary is released as soon as it is used.
        """
        distances = np.ascontiguousarray(distances)
        num_rows, num_gallery = distances.shape
        # Invalid gallery items get +inf: junk, same person seen by the same camera, the query image itself.
        if gallery.junk_cols.size:
            distances[:, gallery.junk_cols] = np.inf
        positive = query_ids[:, None] == gallery.ids[None, :]  # (B, G) bool
        if self.protocol != "no-camera":
            same_cam = query_cams[:, None] == gallery.cams[None, :]
            same_cam &= positive
            distances[same_cam] = np.inf
            positive ^= same_cam  # same_cam is a subset of positive
            del same_cam
        if query_path_codes is not None:
            path_rows, path_cols = _group_lookup(gallery.path_codes, query_path_codes)
            distances[path_rows, path_cols] = np.inf
            del path_rows, path_cols
        if exclude_same_index:
            self_rows = np.arange(num_rows)
            self_cols = self_rows + query_offset
            inside = self_cols < num_gallery
            distances[self_rows[inside], self_cols[inside]] = np.inf
        positive &= np.isfinite(distances)  # junk-id queries and excluded self-matches are not positives

        num_positives = np.count_nonzero(positive, axis=1)
        self.num_skipped += int((num_positives == 0).sum())
        if not num_positives.any():
            return
        used = num_positives > 0
        row_start = np.cumsum(num_positives) - num_positives
        gallery_bits = max(1, int(num_gallery - 1).bit_length())
        row_shift = 32 + gallery_bits

        # Positives, as sort keys sorted by (row, distance, column): flat indices are row-major, so each row's
        # positives are contiguous and the easiest / hardest positive of a row are reductions over its segment.
        positive_keys = np.flatnonzero(positive)
        del positive
        positive_distances = distances.reshape(-1)[positive_keys]
        lowest = np.full(num_rows, np.inf, dtype=np.float32)
        highest = np.full(num_rows, -np.inf, dtype=np.float32)
        lowest[used] = np.minimum.reduceat(positive_distances, row_start[used])
        highest[used] = np.maximum.reduceat(positive_distances, row_start[used])
        del positive_distances
        positive_keys = _sort_keys(distances, positive_keys, gallery_bits)
        positive_keys.sort()

        # Items strictly closer than the easiest positive are only counted; those between the easiest and the
        # hardest positive (ties included) are ordered exactly by (distance, gallery index).
        num_closer = np.count_nonzero(distances < lowest[:, None], axis=1)
        in_window = distances >= lowest[:, None]
        in_window &= distances <= highest[:, None]
        window_keys = np.flatnonzero(in_window)
        del in_window
        window_keys = _sort_keys(distances, window_keys, gallery_bits)
        # Bins: row r has num_positives[r] + 1 bins, bin j counting the window items after positive j - 1 and at or
        # before positive j. A window item's global bin is (positives sorted before it) + (its row).
        bins = np.searchsorted(positive_keys, window_keys)
        window_keys >>= row_shift  # -> row
        bins += window_keys
        del window_keys
        num_positive_total = len(positive_keys)
        cumulative = np.bincount(bins, minlength=num_positive_total + num_rows)
        del bins
        np.cumsum(cumulative, out=cumulative)
        sorted_rows = positive_keys
        sorted_rows >>= row_shift  # in place: the keys are no longer needed
        del positive_keys
        row_last_bin = row_start + np.arange(num_rows) + num_positives  # the bin after the row's last positive
        before_row = np.zeros(num_rows, dtype=np.int64)  # window items in earlier rows
        before_row[1:] = cumulative[row_last_bin[:-1]]
        ranks = np.delete(cumulative, row_last_bin)  # window items up to positive j (all rows)
        del cumulative
        ranks -= before_row[sorted_rows]
        ranks += num_closer[sorted_rows]
        ranks -= 1  # 0-based rank of each positive, ascending per row
        del sorted_rows

        first_ranks = ranks[row_start[used]]
        last_ranks = ranks[row_start[used] + num_positives[used] - 1]
        precisions = np.arange(1, num_positive_total + 1, dtype=np.float64)
        precisions -= np.repeat(row_start.astype(np.float64), num_positives)  # 1-based index within the row
        ranks += 1
        precisions /= ranks
        del ranks
        precision_sums = np.add.reduceat(precisions, row_start[used])
        del precisions
        self.average_precisions.append(precision_sums / num_positives[used])
        self.inverse_negative_penalties.append(num_positives[used] / (last_ranks + 1.0))

        if self.protocol == "cuhk03":
            for row in np.flatnonzero(used):
                self._add_single_gallery_shot(distances[row], gallery.ids, query_ids[row])
        else:
            cap = len(self.first_match_hist) - 1
            self.first_match_hist += np.bincount(np.minimum(first_ranks, cap), minlength=cap + 1)

    def _add_single_gallery_shot(self, row_distances: np.ndarray, gallery_ids: np.ndarray, query_id: int) -> None:
        """CUHK03 CMC as torchreid's `eval_cuhk03`: per repeat, one random gallery image per identity."""
        valid = np.flatnonzero(np.isfinite(row_distances))
        ranking = valid[np.argsort(row_distances[valid], kind="stable")]
        identities, inverse, counts = np.unique(gallery_ids[ranking], return_inverse=True, return_counts=True)
        members = np.argsort(inverse, kind="stable")  # ranking positions grouped by identity, ascending
        starts = np.cumsum(counts) - counts
        picks = starts + (self.rng.random((self.num_repeats, len(identities))) * counts).astype(np.int64)
        positions = members[picks]  # (repeats, identities): ranking position of each sampled image
        query_position = positions[:, np.searchsorted(identities, query_id)]
        first_ranks = (positions < query_position[:, None]).sum(axis=1)
        cap = len(self.first_match_hist) - 1
        self.first_match_hist += np.bincount(np.minimum(first_ranks, cap), minlength=cap + 1) / self.num_repeats


def _evaluate_blocks(
    distance_blocks: Callable[[int, int], np.ndarray],
    query_ids: np.ndarray,
    gallery_ids: np.ndarray,
    query_cams: Optional[np.ndarray],
    gallery_cams: Optional[np.ndarray],
    query_paths: Optional[np.ndarray],
    gallery_paths: Optional[np.ndarray],
    exclude_same_index: bool,
    max_rank: int,
    protocol: str,
    memory_budget_mb: float,
    num_repeats: int,
    seed: int,
    show_progress: bool,
) -> dict:
    num_query, num_gallery = len(query_ids), len(gallery_ids)
    query_path_codes = gallery_path_codes = None
    if query_paths is not None and gallery_paths is not None:
        _, codes = np.unique(np.concatenate([query_paths, gallery_paths]), return_inverse=True)
        query_path_codes, gallery_path_codes = codes[:num_query], codes[num_query:]
    gallery = _GalleryLabels(
        gallery_ids, gallery_cams, gallery_path_codes, np.flatnonzero(gallery_ids == JUNK_ID).astype(np.int64)
    )
    ranker = _Ranker(protocol, max(max_rank, 10), num_repeats, seed)
    # The exact ordering packs (row, distance, gallery index) into one int64 key: 32 distance bits, the rest shared.
    gallery_bits = max(1, (num_gallery - 1).bit_length())
    if gallery_bits > 30:
        raise ValueError(f"A gallery of {num_gallery} images is too large to rank in one piece; split it.")
    chunk = min(_chunk_size(num_gallery, memory_budget_mb), 2 ** (31 - gallery_bits))
    starts = range(0, num_query, chunk)
    for start in tqdm(starts, desc="Ranking queries", unit="chunk", disable=not show_progress or len(starts) < 2):
        stop = min(start + chunk, num_query)
        ranker.add_chunk(
            distance_blocks(start, stop),
            query_ids[start:stop],
            None if query_cams is None else query_cams[start:stop],
            None if query_path_codes is None else query_path_codes[start:stop],
            start,
            gallery,
            exclude_same_index,
        )

    num_valid = num_query - ranker.num_skipped
    if num_valid == 0:
        hint = (
            " Under this protocol, gallery images of the query's person taken by the query's camera are not "
            "matches. If your data has no camera ids (or a single camera), use protocol='no-camera'."
            if protocol != "no-camera"
            else " Does the gallery contain the query identities (person ids other than -1)?"
        )
        raise ValueError(
            f"No query has a valid match in the gallery under protocol={protocol!r} ({num_query} queries, "
            f"{num_gallery} gallery images).{hint}"
        )
    if ranker.num_skipped:
        logger.info("%d of %d queries have no valid match in the gallery and were skipped.", ranker.num_skipped, num_query)
    cmc_full = np.cumsum(ranker.first_match_hist)[:-1] / num_valid
    return {
        "cmc": cmc_full[:max_rank],
        "rank1": float(cmc_full[0]),
        "rank5": float(cmc_full[4]),
        "rank10": float(cmc_full[9]),
        "mAP": float(np.concatenate(ranker.average_precisions).mean()),
        "mINP": float(np.concatenate(ranker.inverse_negative_penalties).mean()),
        "num_queries": int(num_valid),
        "num_skipped_queries": int(ranker.num_skipped),
    }


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
    _check_choice(protocol, "protocol", PROTOCOLS)
    needs_cams = protocol != "no-camera"
    if needs_cams and (query_cams is None or gallery_cams is None):
        raise ValueError(
            f"protocol={protocol!r} needs `query_cams` and `gallery_cams`. Without camera ids, use "
            "protocol='no-camera'."
        )
    return (
        check_labels(query_ids, "query_ids", num_query),
        check_labels(gallery_ids, "gallery_ids", num_gallery),
        check_labels(query_cams, "query_cams", num_query, required=needs_cams) if needs_cams else None,
        check_labels(gallery_cams, "gallery_cams", num_gallery, required=needs_cams) if needs_cams else None,
        _check_paths(query_paths, "query_paths", num_query),
        _check_paths(gallery_paths, "gallery_paths", num_gallery),
    )


# --------------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------------


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
    memory_budget_mb: float = _DEFAULT_MEMORY_BUDGET_MB,
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
        >>> results = evaluate_reid(query_features, gallery_features, query_ids, gallery_ids, query_cams, gallery_cams)
        >>> results["rank1"], results["mAP"], results["cmc"].shape
        (0.93, 0.82, (50,))
        ```
    """
    _check_choice(metric, "metric", METRICS)
    _check_max_rank(max_rank)
    checks = {"norm_tolerance": norm_tolerance, "reject_zero": metric == "cosine"}
    query = check_features(query_features, "query_features", **checks)
    same_set = gallery_features is query_features
    gallery = query if same_set else check_features(gallery_features, "gallery_features", dim=query.shape[1], **checks)
    labels = _check_labels_for_protocol(
        protocol, len(query), len(gallery), query_ids, gallery_ids, query_cams, gallery_cams, query_paths, gallery_paths
    )
    if rerank:
        from .rerank import re_rank

        if metric == "cosine":
            query = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
            gallery = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
        reranked = re_rank(query, gallery, memory_budget_mb=memory_budget_mb)

        def distance_blocks(start: int, stop: int) -> np.ndarray:
            return reranked[start:stop].copy()

    else:
        distance_blocks = _DistanceBlocks(query, gallery, metric)
    return _evaluate_blocks(
        distance_blocks, *labels, same_set and protocol == "no-camera", max_rank, protocol, memory_budget_mb,
        num_repeats, seed, show_progress,
    )


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
    memory_budget_mb: float = _DEFAULT_MEMORY_BUDGET_MB,
    num_repeats: int = 10,
    seed: int = 0,
    show_progress: bool = True,
) -> dict:
    """[`evaluate_reid`] from a precomputed `(num_query, num_gallery)` distance matrix (smaller = more similar).

    Same protocols and results; `exclude_same_index=True` excludes gallery item `i` for query `i` (query set ==
    gallery set, for `protocol="no-camera"`).

    Example:
        ```python
        >>> distances = re_rank(query_features, gallery_features)
        >>> evaluate_distance_matrix(distances, query_ids, gallery_ids, query_cams, gallery_cams)["mAP"]
        0.87
        ```
    """
    _check_max_rank(max_rank)
    matrix = _to_numpy(distances)
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise ValueError(f"`distances` must be a non-empty (num_query, num_gallery) matrix, got shape {matrix.shape}.")
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    if not np.isfinite(matrix).all():
        raise ValueError("`distances` contains NaN or infinite values.")
    labels = _check_labels_for_protocol(
        protocol, matrix.shape[0], matrix.shape[1], query_ids, gallery_ids, query_cams, gallery_cams, query_paths,
        gallery_paths,
    )
    def distance_blocks(start: int, stop: int) -> np.ndarray:
        return matrix[start:stop].copy()

    return _evaluate_blocks(
        distance_blocks, *labels, exclude_same_index, max_rank, protocol, memory_budget_mb, num_repeats, seed,
        show_progress,
    )


def _check_max_rank(max_rank: int) -> None:
    if not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise ValueError(f"`max_rank` must be a positive integer, got {max_rank!r}.")


@dataclass
class ReIDSplit:
    """One query/gallery pair for [`evaluate_reid_many`]: the positional arguments of [`evaluate_reid`] by name.

    Example:
        ```python
        >>> split = ReIDSplit(query_features, gallery_features, query_ids, gallery_ids, query_cams, gallery_cams)
        ```
    """

    query_features: ArrayLike
    gallery_features: ArrayLike
    query_ids: ArrayLike
    gallery_ids: ArrayLike
    query_cams: Optional[ArrayLike] = None
    gallery_cams: Optional[ArrayLike] = None
    query_paths: Optional[Sequence[str]] = None
    gallery_paths: Optional[Sequence[str]] = None


def evaluate_reid_many(
    splits: Union[Mapping[str, Union[ReIDSplit, Sequence, Mapping]], Iterable[tuple[str, ReIDSplit]]],
    **kwargs,
) -> list[dict]:
    """Evaluates several named query/gallery pairs (e.g. one model on several datasets): one result row each.

    Args:
        splits: `{name: split}` (or `(name, split)` pairs) where a split is a [`ReIDSplit`], a tuple
            `(query_features, gallery_features, query_ids, gallery_ids[, query_cams, gallery_cams])` or a dict with
            those keys.
        **kwargs: forwarded to [`evaluate_reid`] (`protocol`, `metric`, `rerank`, `max_rank`, ...).

    Returns:
        `list[dict]`: per split, `{"name": name, **evaluate_reid(...)}`; see [`format_results_table`].

    Example:
        ```python
        >>> rows = evaluate_reid_many({"market1501": market_split, "dukemtmc": duke_split}, protocol="market1501")
        >>> print(format_results_table(rows))
        ```
    """
    items = splits.items() if isinstance(splits, Mapping) else splits
    rows = []
    for name, split in items:
        if isinstance(split, Mapping):
            split = ReIDSplit(**split)
        elif not isinstance(split, ReIDSplit):
            split = ReIDSplit(*split)
        try:
            result = evaluate_reid(
                split.query_features, split.gallery_features, split.query_ids, split.gallery_ids, split.query_cams,
                split.gallery_cams, query_paths=split.query_paths, gallery_paths=split.gallery_paths, **kwargs,
            )
        except ValueError as error:
            raise ValueError(f"Split {name!r}: {error}") from error
        rows.append({"name": name, **result})
    return rows


def format_results_table(rows: Sequence[Mapping], digits: int = 1) -> str:
    """A Markdown table of result rows (from [`evaluate_reid_many`]): percentages for rank-k, mAP and mINP.

    Example:
        ```python
        >>> print(format_results_table([{"name": "market1501", "rank1": 0.9, "rank5": 0.95, "rank10": 0.97,
        ...     "mAP": 0.8, "mINP": 0.5, "num_queries": 3368, "num_skipped_queries": 0}]))
        | name | Rank-1 | Rank-5 | Rank-10 | mAP | mINP | queries | skipped |
        ...
        ```
    """
    columns = [("rank1", "Rank-1"), ("rank5", "Rank-5"), ("rank10", "Rank-10"), ("mAP", "mAP"), ("mINP", "mINP")]
    header = "| name | " + " | ".join(title for _, title in columns) + " | queries | skipped |"
    lines = [header, "|" + "---|" * (len(columns) + 3)]
    for row in rows:
        values = " | ".join(f"{100 * row[key]:.{digits}f}" for key, _ in columns)
        lines.append(
            f"| {row.get('name', '')} | {values} | {row['num_queries']} | {row['num_skipped_queries']} |"
        )
    return "\n".join(lines)
