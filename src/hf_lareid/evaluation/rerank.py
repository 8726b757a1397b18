"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with k-reciprocal Encoding", CVPR 2017).

Same result as the authors' dense implementation, without its `(N, N)` matrices (N = queries + gallery): distances
are computed in row blocks of a memory budget, only the `k1 + 1` nearest neighbours of every image are kept, and the
k-reciprocal feature vectors `V` are sparse (CSR index arrays). The only dense array is the returned
`(num_query, num_gallery)` distance matrix.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ..utils.errors import InvalidInputError
from .checks import ArrayLike, check_features

__all__ = ["re_rank"]

_DEFAULT_MEMORY_BUDGET_MB = 1024.0


def _squared_distances(features: torch.Tensor, squared_norms: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Squared Euclidean distances of rows `[start, stop)` to all rows: `(stop - start, N)` float32, clamped at 0."""
    block = torch.addmm(squared_norms.unsqueeze(0), features[start:stop], features.T, alpha=-2.0)
    block.add_(squared_norms[start:stop, None])
    return block.clamp_min_(0.0)


def _smallest_k_stable(block: torch.Tensor, k: int) -> np.ndarray:
    """Column indices of the `k` smallest values per row, ordered as a stable argsort (value, then index) would."""
    num_rows, num_cols = block.shape
    values, indices = torch.topk(block, min(k + 1, num_cols), dim=1, largest=False, sorted=True)
    values, indices = values.numpy(), indices.numpy()
    # topk's order among equal values is unspecified: sort each row's candidates by (value, index).
    order = np.lexsort((indices.ravel(), values.ravel(), np.repeat(np.arange(num_rows), values.shape[1])))
    values, indices = values.ravel()[order].reshape(values.shape), indices.ravel()[order].reshape(indices.shape)
    if values.shape[1] > k:
        # A tie across the k-th place: the lowest indices among all equal values must win; redo those rows exactly.
        for row in np.flatnonzero(values[:, k - 1] == values[:, k]):
            row_values = block[row].numpy()
            candidates = np.flatnonzero(row_values <= values[row, k - 1])
            indices[row, :k] = candidates[np.argsort(row_values[candidates], kind="stable")][:k]
    return indices[:, :k]


def _reciprocal_mask(neighbours: np.ndarray, length: int) -> np.ndarray:
    """`mask[i, a]`: `i` is among the first `length` neighbours of its `a`-th neighbour (both lists `length` long)."""
    forward = neighbours[:, :length]  # (N, length)
    backward = neighbours[forward, :length]  # (N, length, length)
    return (backward == np.arange(len(neighbours))[:, None, None]).any(axis=2)


def _ragged_gather(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the entries of CSR rows `rows` (in order) and, for each, the index into `rows` it came from."""
    counts = indptr[rows + 1] - indptr[rows]
    owner = np.repeat(np.arange(len(rows)), counts)
    positions = (
        np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(indptr[rows], counts)
    )
    return positions, owner


def _sum_duplicates(row: np.ndarray, col: np.ndarray, values: np.ndarray, num_rows: int, num_cols: int):
    """CSR `(indptr, indices, data)` of the sparse matrix with entries `(row, col, value)`, duplicates summed."""
    keys = row.astype(np.int64) * num_cols + col
    unique_keys, inverse = np.unique(keys, return_inverse=True)
    data = np.bincount(inverse, weights=values, minlength=len(unique_keys))
    indptr = np.searchsorted(unique_keys, np.arange(num_rows + 1, dtype=np.int64) * num_cols)
    return indptr, (unique_keys % num_cols).astype(np.int64), data


def re_rank(
    query_features: ArrayLike,
    gallery_features: ArrayLike,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    *,
    memory_budget_mb: float = _DEFAULT_MEMORY_BUDGET_MB,
    show_progress: bool = True,
) -> np.ndarray:
    """k-reciprocal re-ranked distances between queries and gallery.

    As in the authors' code: the original distance is the squared Euclidean distance over all images (queries and
    gallery together), divided by each image's largest distance; `V` holds the k-reciprocal neighbours (expanded by
    those of their `k1 / 2` reciprocal neighbours) weighted by `exp(-distance)`, averaged over the `k2` nearest
    neighbours (query expansion); the result is `(1 - lambda) * jaccard + lambda * original`. Neighbour lists are
    ordered by distance, then index. Pass L2-normalised features to re-rank cosine distances.

    Args:
        query_features (`np.ndarray` or `torch.Tensor` of shape `(num_query, dim)`): query embeddings.
        gallery_features (`np.ndarray` or `torch.Tensor` of shape `(num_gallery, dim)`): gallery embeddings.
        k1 (`int`, *optional*, defaults to 20): size of the k-reciprocal neighbourhood.
        k2 (`int`, *optional*, defaults to 6): neighbours averaged in the query expansion (1 disables it);
            at most `k1 + 1`.
        lambda_value (`float`, *optional*, defaults to 0.3): weight of the original distance, in [0, 1].
        memory_budget_mb (`float`, *optional*, defaults to 1024): working memory for one block of distance rows,
            besides the features and the returned matrix.
        show_progress (`bool`, *optional*, defaults to `True`): show progress bars.

    Returns:
        `np.ndarray` of shape `(num_query, num_gallery)`, float32: smaller means more similar.

    Example:
        ```python
        >>> from hf_lareid.evaluation import re_rank
        >>> rng = np.random.default_rng(0)
        >>> query, gallery = rng.normal(size=(4, 8)), rng.normal(size=(10, 8))
        >>> re_rank(query, gallery, k1=3, k2=2, show_progress=False).shape  # (num_query, num_gallery)
        (4, 10)
        ```
    """
    query = check_features(query_features, "query_features")
    gallery = check_features(gallery_features, "gallery_features", dim=query.shape[1])
    if not (isinstance(k1, (int, np.integer)) and k1 >= 1):
        raise InvalidInputError(f"`k1` must be a positive integer, got {k1!r}.")
    if not (isinstance(k2, (int, np.integer)) and 1 <= k2 <= k1 + 1):
        raise InvalidInputError(f"`k2` must be an integer in [1, k1 + 1] = [1, {k1 + 1}], got {k2!r}.")
    if not 0.0 <= lambda_value <= 1.0:
        raise InvalidInputError(f"`lambda_value` must be in [0, 1], got {lambda_value!r}.")
    if memory_budget_mb <= 0:
        raise InvalidInputError(f"`memory_budget_mb` must be positive, got {memory_budget_mb}.")

    num_query = len(query)
    features = np.concatenate([query, gallery])
    num_all = len(features)
    squared_norms = np.einsum("ij,ij->i", features, features)
    num_neighbours = min(k1 + 1, num_all)
    num_half = min(int(np.around(k1 / 2.0)) + 1, num_all)
    budget_bytes = memory_budget_mb * 2**20
    hide_progress = not show_progress

    # 1. Row blocks: each image's largest distance, its k1 + 1 nearest neighbours, and the query x gallery block of
    #    the normalised original distance (kept as the output buffer).
    block_rows = max(1, int(budget_bytes // (num_all * 16)))
    features_t, squared_norms_t = torch.from_numpy(features), torch.from_numpy(squared_norms)
    neighbours = np.empty((num_all, num_neighbours), dtype=np.int64)
    row_max = np.empty(num_all, dtype=np.float32)
    result = np.empty((num_query, len(gallery)), dtype=np.float32)
    for start in tqdm(range(0, num_all, block_rows), desc="Re-ranking: neighbours", disable=hide_progress):
        stop = min(start + block_rows, num_all)
        block = _squared_distances(features_t, squared_norms_t, start, stop)
        row_max[start:stop] = block.max(dim=1).values.clamp_min(np.finfo(np.float32).tiny).numpy()
        # Dividing a row by its maximum keeps its order, so the neighbours come from the raw block.
        neighbours[start:stop] = _smallest_k_stable(block, num_neighbours)
        if start < num_query:
            query_stop = min(stop, num_query)
            result[start:query_stop] = block[: query_stop - start, num_query:].numpy() / row_max[start:query_stop, None]
        del block

    # 2. k-reciprocal sets, expanded by the k1/2-reciprocal sets of their members when those overlap by > 2/3.
    reciprocal = _reciprocal_mask(neighbours, num_neighbours)  # (N, K)
    half_reciprocal = _reciprocal_mask(neighbours, num_half)  # (N, Kh)
    half_neighbours = neighbours[:, :num_half]
    pair_rows, pair_cols = [], []
    chunk = max(1, int(budget_bytes // (num_neighbours * num_half * num_neighbours * 2 + 1)))
    for start in tqdm(range(0, num_all, chunk), desc="Re-ranking: reciprocal sets", disable=hide_progress):
        stop = min(start + chunk, num_all)
        own, own_mask = neighbours[start:stop], reciprocal[start:stop]  # (b, K)
        candidate_sets = half_neighbours[own]  # (b, K, Kh)
        candidate_masks = half_reciprocal[own]  # (b, K, Kh)
        in_own = (candidate_sets[..., None] == own[:, None, None, :]) & own_mask[:, None, None, :]
        overlap = (in_own.any(axis=3) & candidate_masks).sum(axis=2)
        expand = own_mask & (overlap > 2.0 / 3.0 * candidate_masks.sum(axis=2))  # (b, K)
        members = np.concatenate(
            [
                np.where(own_mask, own, num_all),
                np.where(expand[..., None] & candidate_masks, candidate_sets, num_all).reshape(stop - start, -1),
            ],
            axis=1,
        )
        members.sort(axis=1)
        unique = members != num_all
        unique[:, 1:] &= members[:, 1:] != members[:, :-1]
        rows, positions = np.nonzero(unique)
        pair_rows.append(rows + start)
        pair_cols.append(members[rows, positions])
    pair_rows, pair_cols = np.concatenate(pair_rows), np.concatenate(pair_cols)

    # 3. V: weights exp(-original distance) over each set, normalised to sum 1 (pairs are sorted by row).
    weights = np.empty(len(pair_rows), dtype=np.float32)
    pair_chunk = max(1, int(budget_bytes // (features.shape[1] * 4 * 2)))
    for start in range(0, len(pair_rows), pair_chunk):
        rows, cols = pair_rows[start : start + pair_chunk], pair_cols[start : start + pair_chunk]
        dots = np.einsum("ij,ij->i", features[rows], features[cols])
        distances = np.maximum(squared_norms[rows] + squared_norms[cols] - 2.0 * dots, 0.0) / row_max[rows]
        weights[start : start + len(rows)] = np.exp(-distances)
    indptr = np.searchsorted(pair_rows, np.arange(num_all + 1))
    row_sums = np.bincount(pair_rows, weights=weights, minlength=num_all)
    values = weights / row_sums[pair_rows]
    indices = pair_cols

    # 4. Query expansion: V[i] <- mean of V over i's k2 nearest neighbours.
    if k2 != 1:
        expansion = neighbours[:, : min(k2, num_all)]
        positions, owner = _ragged_gather(indptr, expansion.reshape(-1))
        indptr, indices, values = _sum_duplicates(
            owner // expansion.shape[1], indices[positions], values[positions] / expansion.shape[1], num_all, num_all
        )

    # 5. Jaccard distance of each query to each gallery image: 1 - S / (2 - S), S = sum_k min(V[q, k], V[g, k]),
    #    through an inverted index (column k -> gallery rows with V[g, k] != 0).
    entry_rows = np.repeat(np.arange(num_all), np.diff(indptr))
    in_gallery = entry_rows >= num_query
    column_order = np.argsort(indices[in_gallery], kind="stable")
    column_rows = entry_rows[in_gallery][column_order] - num_query
    column_values = values[in_gallery][column_order]
    column_indptr = np.searchsorted(indices[in_gallery][column_order], np.arange(num_all + 1))
    query_chunk = max(1, int(budget_bytes // (len(gallery) * 16)))
    for start in tqdm(range(0, num_query, query_chunk), desc="Re-ranking: Jaccard", disable=hide_progress):
        stop = min(start + query_chunk, num_query)
        query_entries = np.arange(indptr[start], indptr[stop])
        positions, owner = _ragged_gather(column_indptr, indices[query_entries])
        mins = np.minimum(values[query_entries][owner], column_values[positions])
        local_rows = entry_rows[query_entries][owner] - start
        overlap = np.bincount(
            local_rows * len(gallery) + column_rows[positions], weights=mins, minlength=(stop - start) * len(gallery)
        ).reshape(stop - start, len(gallery))
        jaccard = 1.0 - overlap / (2.0 - overlap)
        result[start:stop] = (1.0 - lambda_value) * jaccard + lambda_value * result[start:stop]
    return result
