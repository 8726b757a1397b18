"""Sparse, blockwise k-reciprocal re-ranking against the authors' dense implementation."""

import numpy as np
import pytest

from hf_lareid.evaluation import evaluate_distance_matrix, evaluate_reid, re_rank
from hf_lareid.utils.errors import InvalidInputError


def dense_re_ranking(query_features, gallery_features, k1=20, k2=6, lambda_value=0.3):
    """Zhong et al.'s re_ranking (features version), with stable argsort so that ties are ordered by index."""
    query_num = query_features.shape[0]
    feat = np.concatenate([query_features, gallery_features]).astype(np.float64)
    original_dist = np.stack([((feat - row) ** 2).sum(1) for row in feat]).astype(np.float32)  # cdist(feat, feat)**2
    all_num = original_dist.shape[0]
    original_dist = np.transpose(original_dist / np.max(original_dist, axis=0))
    V = np.zeros_like(original_dist).astype(np.float32)
    initial_rank = np.argsort(original_dist, kind="stable").astype(np.int32)
    for i in range(all_num):
        forward_k_neigh_index = initial_rank[i, : k1 + 1]
        backward_k_neigh_index = initial_rank[forward_k_neigh_index, : k1 + 1]
        fi = np.where(backward_k_neigh_index == i)[0]
        k_reciprocal_index = forward_k_neigh_index[fi]
        k_reciprocal_expansion_index = k_reciprocal_index
        for j in range(len(k_reciprocal_index)):
            candidate = k_reciprocal_index[j]
            candidate_forward_k_neigh_index = initial_rank[candidate, : int(np.around(k1 / 2.0)) + 1]
            candidate_backward_k_neigh_index = initial_rank[
                candidate_forward_k_neigh_index, : int(np.around(k1 / 2.0)) + 1
            ]
            fi_candidate = np.where(candidate_backward_k_neigh_index == candidate)[0]
            candidate_k_reciprocal_index = candidate_forward_k_neigh_index[fi_candidate]
            if len(np.intersect1d(candidate_k_reciprocal_index, k_reciprocal_index)) > 2.0 / 3 * len(
                candidate_k_reciprocal_index
            ):
                k_reciprocal_expansion_index = np.append(k_reciprocal_expansion_index, candidate_k_reciprocal_index)
        k_reciprocal_expansion_index = np.unique(k_reciprocal_expansion_index)
        weight = np.exp(-original_dist[i, k_reciprocal_expansion_index])
        V[i, k_reciprocal_expansion_index] = 1.0 * weight / np.sum(weight)
    original_dist = original_dist[:query_num,]
    if k2 != 1:
        V_qe = np.zeros_like(V, dtype=np.float32)
        for i in range(all_num):
            V_qe[i, :] = np.mean(V[initial_rank[i, :k2], :], axis=0)
        V = V_qe
    invIndex = [np.where(V[:, i] != 0)[0] for i in range(all_num)]
    jaccard_dist = np.zeros_like(original_dist, dtype=np.float32)
    for i in range(query_num):
        temp_min = np.zeros(shape=[1, all_num], dtype=np.float32)
        indNonZero = np.where(V[i, :] != 0)[0]
        indImages = [invIndex[ind] for ind in indNonZero]
        for j in range(len(indNonZero)):
            temp_min[0, indImages[j]] = temp_min[0, indImages[j]] + np.minimum(
                V[i, indNonZero[j]], V[indImages[j], indNonZero[j]]
            )
        jaccard_dist[i] = 1 - temp_min / (2.0 - temp_min)
    final_dist = jaccard_dist * (1 - lambda_value) + original_dist * lambda_value
    return final_dist[:query_num, query_num:]


def clustered_features(seed, num_query, num_gallery, dim=8, num_ids=6):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(num_ids, dim))
    query = centers[rng.integers(0, num_ids, num_query)] + 0.6 * rng.normal(size=(num_query, dim))
    gallery = centers[rng.integers(0, num_ids, num_gallery)] + 0.6 * rng.normal(size=(num_gallery, dim))
    return query.astype(np.float32), gallery.astype(np.float32)


@pytest.mark.parametrize(
    "seed, num_query, num_gallery, k1, k2, lambda_value",
    [(0, 15, 60, 20, 6, 0.3), (1, 10, 40, 7, 3, 0.5), (2, 8, 30, 5, 1, 0.0), (3, 6, 10, 20, 6, 0.3)],
)
@pytest.mark.parametrize("budget", [0.002, 64.0])  # tiny blocks of a few rows vs one block
def test_matches_dense_reference(seed, num_query, num_gallery, k1, k2, lambda_value, budget):
    query, gallery = clustered_features(seed, num_query, num_gallery)
    expected = dense_re_ranking(query, gallery, k1, k2, lambda_value)
    result = re_rank(query, gallery, k1, k2, lambda_value, memory_budget_mb=budget, show_progress=False)
    assert result.shape == (num_query, num_gallery) and result.dtype == np.float32
    np.testing.assert_allclose(result, expected, rtol=0, atol=2e-5)


def test_duplicate_images_tie_like_a_stable_sort():
    query, gallery = clustered_features(4, 6, 30)
    gallery[5] = gallery[6] = query[0]  # exact duplicates: zero distances tie
    np.testing.assert_allclose(
        re_rank(query, gallery, 6, 3, show_progress=False), dense_re_ranking(query, gallery, 6, 3), atol=2e-5
    )


def test_evaluate_reid_with_rerank():
    query, gallery = clustered_features(5, 12, 50)
    rng = np.random.default_rng(5)
    query_ids, gallery_ids = rng.integers(0, 4, 12), rng.integers(0, 4, 50)
    normalized_q = query / np.linalg.norm(query, axis=1, keepdims=True)
    normalized_g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    expected = evaluate_distance_matrix(
        dense_re_ranking(normalized_q, normalized_g), query_ids, gallery_ids, protocol="no-camera"
    )
    result = evaluate_reid(query, gallery, query_ids, gallery_ids, protocol="no-camera", rerank=True)
    assert result["mAP"] == pytest.approx(expected["mAP"], abs=1e-9)
    np.testing.assert_allclose(result["cmc"], expected["cmc"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(k1=0), "k1"),
        (dict(k2=30), "k2"),
        (dict(lambda_value=1.5), "lambda_value"),
        (dict(memory_budget_mb=0), "memory_budget_mb"),
    ],
)
def test_bad_arguments(kwargs, message):
    query, gallery = clustered_features(0, 3, 5)
    with pytest.raises(ValueError, match=message):
        re_rank(query, gallery, **kwargs)
    with pytest.raises(ValueError, match="dimension"):
        re_rank(query, gallery[:, :4])


def _with_nan(features, row=1):
    features = features.copy()
    features[row, 0] = np.nan
    return features


@pytest.mark.parametrize(
    "make_inputs, message",
    [
        (lambda q, g: (_with_nan(q), g), r"`query_features` contains NaN or infinite values in 1 row"),
        (lambda q, g: (q, _with_nan(g, row=3)), r"`gallery_features` contains NaN or infinite values in 1 row"),
        (lambda q, g: (q, np.full_like(g, np.inf)), r"`gallery_features` contains NaN or infinite values in 5 row"),
        (lambda q, g: (q, g[:0]), r"`gallery_features` is empty"),
        (lambda q, g: (q[:0], g), r"`query_features` is empty"),
        (lambda q, g: (q, g[:, :4]), r"`gallery_features` has feature dimension 4, expected 8"),
        (lambda q, g: (q[:, :4], g), r"`gallery_features` has feature dimension 8, expected 4"),
    ],
    ids=["nan-query", "nan-gallery", "inf-gallery", "empty-gallery", "empty-query", "narrow-gallery", "narrow-query"],
)
def test_bad_features(make_inputs, message):
    query, gallery = make_inputs(*clustered_features(0, 3, 5))
    with pytest.raises(ValueError, match=message) as raised:
        re_rank(query, gallery, show_progress=False)
    assert raised.type is InvalidInputError  # one clear error of the check, not a numpy/torch failure further down
