"""Query x gallery distances (cosine or squared Euclidean), computed in chunks of queries within a memory budget.

[`compute_distance_matrix`] gives the whole matrix; [`DistanceBlocks`] gives rows of it, as the ranking asks for them.
"""

from __future__ import annotations

import numpy as np

from ..utils.errors import InvalidInputError
from .checks import ArrayLike, check_choice, check_features

__all__ = ["METRICS", "DistanceBlocks", "compute_distance_matrix", "query_chunk_size"]

METRICS = ("cosine", "euclidean")

# Working memory of one chunk of B queries against G gallery items, besides the inputs. Per (query, gallery) pair:
# the float32 distance block (4 bytes) plus, in the worst case (every gallery item a positive and the ranking window
# spanning the whole gallery), the int64 sort keys of the positives (8) and of the window items (8) and one int64
# array being built or searched (8) with its float32/int32 scratch (4): 32 bytes, measured with tracemalloc
# (tests/evaluation/test_metrics.py::test_memory_budget_holds_in_the_worst_case), rounded up to 40 for numpy's
# small temporaries. Per gallery item, whatever the chunk size: gallery-sized vectors (norms, per-row scratch of the
# CUHK03 sampling, path lookups), reserved from the budget.
BYTES_PER_PAIR = 40
BYTES_PER_GALLERY_ITEM = 128
DEFAULT_MEMORY_BUDGET_MB = 512.0


def query_chunk_size(num_gallery: int, memory_budget_mb: float) -> int:
    """How many queries to rank at once against `num_gallery` items within `memory_budget_mb` (at least one)."""
    if memory_budget_mb <= 0:
        raise InvalidInputError(f"`memory_budget_mb` must be positive, got {memory_budget_mb}.")
    available = memory_budget_mb * 2**20 - num_gallery * BYTES_PER_GALLERY_ITEM
    return max(1, int(available // (num_gallery * BYTES_PER_PAIR)))


class DistanceBlocks:
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
    memory_budget_mb: float = DEFAULT_MEMORY_BUDGET_MB,
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
    check_choice(metric, "metric", METRICS)
    query = check_features(query_features, "query_features")
    gallery = check_features(gallery_features, "gallery_features", dim=query.shape[1])
    blocks = DistanceBlocks(query, gallery, metric)
    chunk = query_chunk_size(gallery.shape[0], memory_budget_mb)
    return np.concatenate(
        [blocks(start, min(start + chunk, query.shape[0])) for start in range(0, query.shape[0], chunk)]
    )
