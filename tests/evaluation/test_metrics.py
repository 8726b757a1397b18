"""Metrics against a plain per-query reference (sort, filter, cumulative match, average precision)."""

import numpy as np
import pytest
import torch

from hf_lareid.evaluation import compute_distance_matrix, evaluate_distance_matrix, evaluate_reid


def reference_evaluate(
    distances,
    query_ids,
    gallery_ids,
    query_cams,
    gallery_cams,
    max_rank,
    protocol,
    query_paths=None,
    gallery_paths=None,
    exclude_same_index=False,
    num_repeats=10,
    seed=0,
):
    """One query at a time, as torchreid's eval_market1501 / eval_cuhk03 (+ mINP as in the AGW code)."""
    rng = np.random.default_rng(seed)
    cmc_sum, average_precisions, inverse_penalties, skipped = np.zeros(max_rank), [], [], 0
    for i in range(len(query_ids)):
        order = np.argsort(distances[i], kind="stable")
        keep = gallery_ids[order] != -1
        if protocol != "no-camera":
            keep &= ~((gallery_ids[order] == query_ids[i]) & (gallery_cams[order] == query_cams[i]))
        if query_paths is not None:
            keep &= np.asarray(gallery_paths)[order] != query_paths[i]
        if exclude_same_index:
            keep &= order != i
        order = order[keep]
        matches = (gallery_ids[order] == query_ids[i]).astype(np.int64)
        if not matches.any():
            skipped += 1
            continue
        if protocol == "cuhk03":
            identities = np.unique(gallery_ids[order])
            members = {pid: np.flatnonzero(gallery_ids[order] == pid) for pid in identities}
            for _ in range(num_repeats):
                draws = rng.random(len(identities))
                mask = np.zeros(len(order), dtype=bool)
                for draw, pid in zip(draws, identities):
                    mask[members[pid][int(draw * len(members[pid]))]] = True
                sampled = matches[mask].cumsum().clip(max=1)
                sampled = np.concatenate([sampled, np.full(max(0, max_rank - len(sampled)), sampled[-1])])
                cmc_sum += sampled[:max_rank] / num_repeats
        else:
            cmc = matches.cumsum().clip(max=1)
            cmc = np.concatenate([cmc, np.full(max(0, max_rank - len(cmc)), 1)])
            cmc_sum += cmc[:max_rank]
        precision = matches.cumsum() / np.arange(1, len(matches) + 1)
        average_precisions.append((precision * matches).sum() / matches.sum())
        hardest = np.flatnonzero(matches).max()
        inverse_penalties.append(matches.sum() / (hardest + 1.0))
    num_valid = len(query_ids) - skipped
    return {
        "cmc": cmc_sum / num_valid,
        "mAP": float(np.mean(average_precisions)),
        "mINP": float(np.mean(inverse_penalties)),
        "num_queries": num_valid,
        "num_skipped_queries": skipped,
    }


def assert_same_results(result, expected, max_rank):
    assert result["cmc"].shape == (max_rank,)
    np.testing.assert_allclose(result["cmc"], expected["cmc"], rtol=0, atol=1e-12)
    assert result["rank1"] == pytest.approx(expected["cmc"][0], abs=1e-12)
    assert result["mAP"] == pytest.approx(expected["mAP"], abs=1e-12)
    assert result["mINP"] == pytest.approx(expected["mINP"], abs=1e-12)
    assert result["num_queries"] == expected["num_queries"]
    assert result["num_skipped_queries"] == expected["num_skipped_queries"]


def random_case(seed, num_query=25, num_gallery=70, num_ids=6, dim=3):
    """Small integer features (many exact distance ties), junk (-1) and distractors (0), a few cameras."""
    rng = np.random.default_rng(seed)
    query_features = rng.integers(0, 3, size=(num_query, dim)).astype(np.float32)
    gallery_features = rng.integers(0, 3, size=(num_gallery, dim)).astype(np.float32)
    query_ids = rng.integers(1, num_ids + 2, size=num_query)  # id num_ids+1 never in the gallery: missing match
    gallery_ids = rng.integers(-1, num_ids + 1, size=num_gallery)
    query_cams = rng.integers(0, 3, size=num_query)
    gallery_cams = rng.integers(0, 3, size=num_gallery)
    return query_features, gallery_features, query_ids, gallery_ids, query_cams, gallery_cams


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("protocol", ["market1501", "cuhk03", "no-camera"])
@pytest.mark.parametrize("budget", [1e-4, 512.0])  # one query per chunk vs everything in one chunk
def test_matches_reference_with_ties_junk_distractors(seed, protocol, budget):
    qf, gf, qi, gi, qc, gc = random_case(seed)
    distances = compute_distance_matrix(qf, gf, metric="euclidean")
    expected = reference_evaluate(distances, qi, gi, qc, gc, 20, protocol)
    assert expected["num_skipped_queries"] > 0  # the case really has queries without matches
    result = evaluate_reid(
        qf, gf, qi, gi, qc, gc, max_rank=20, metric="euclidean", protocol=protocol, memory_budget_mb=budget
    )
    assert_same_results(result, expected, 20)


@pytest.mark.parametrize("seed", range(3))
def test_cosine_matches_reference(seed):
    rng = np.random.default_rng(seed)
    qf, gf = rng.normal(size=(40, 16)), rng.normal(size=(150, 16))
    qi, gi = rng.integers(0, 10, 40), rng.integers(-1, 10, 150)
    qc, gc = rng.integers(0, 4, 40), rng.integers(0, 4, 150)
    normalized_q = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    normalized_g = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    expected = reference_evaluate(1 - normalized_q @ normalized_g.T, qi, gi, qc, gc, 50, "market1501")
    result = evaluate_reid(torch.from_numpy(qf), gf, qi, gi, qc, gc, metric="cosine")
    assert_same_results(result, expected, 50)


@pytest.mark.parametrize("protocol", ["market1501", "no-camera", "cuhk03"])
def test_distance_matrix_with_heavy_ties_and_signed_zeros(protocol):
    rng = np.random.default_rng(7)
    distances = rng.integers(-2, 3, size=(30, 60)).astype(np.float32)
    distances[distances == 0] = np.where(rng.random((distances == 0).sum()) < 0.5, -0.0, 0.0)
    qi, gi = rng.integers(0, 5, 30), rng.integers(-1, 5, 60)
    qc, gc = rng.integers(0, 2, 30), rng.integers(0, 2, 60)
    expected = reference_evaluate(distances, qi, gi, qc, gc, 10, protocol, seed=3)
    result = evaluate_distance_matrix(distances, qi, gi, qc, gc, max_rank=10, protocol=protocol, seed=3)
    assert_same_results(result, expected, 10)


def test_hand_computed_case():
    # gallery by distance: g0 (id 1, same camera -> removed), g1 (id 2), g2 (id 1), g3 (junk), g4 (id 0), g5 (id 1)
    distances = np.array([[0.0, 0.1, 0.2, 0.3, 0.4, 0.5]])
    gallery_ids = np.array([1, 2, 1, -1, 0, 1])
    gallery_cams = np.array([0, 1, 1, 1, 1, 1])
    result = evaluate_distance_matrix(distances, [1], gallery_ids, [0], gallery_cams, max_rank=4)
    # valid ranking: g1 (neg), g2 (pos, rank 2), g4 (neg), g5 (pos, rank 4)
    np.testing.assert_allclose(result["cmc"], [0, 1, 1, 1])
    assert result["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert result["mINP"] == pytest.approx(2 / 4)
    assert result["rank5"] == 1.0 and result["rank10"] == 1.0


def test_no_camera_excludes_the_query_itself():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(12, 8)).astype(np.float32)
    ids = np.repeat(np.arange(4), 3)
    result = evaluate_reid(features, features, ids, ids, protocol="no-camera")
    normalized = features / np.linalg.norm(features, axis=1, keepdims=True)
    expected = reference_evaluate(
        1 - normalized @ normalized.T, ids, ids, None, None, 50, "no-camera", exclude_same_index=True
    )
    assert_same_results(result, expected, 50)
    # a copy is not the same object: the query matches itself unless paths tell
    assert evaluate_reid(features, features.copy(), ids, ids, protocol="no-camera")["rank1"] == 1.0
    paths = [f"img_{i}.jpg" for i in range(12)]
    by_path = evaluate_reid(
        features, features.copy(), ids, ids, protocol="no-camera", query_paths=paths, gallery_paths=paths
    )
    assert by_path["mAP"] == pytest.approx(result["mAP"], abs=1e-12)


def test_no_valid_query_names_the_no_camera_protocol():
    features = np.eye(4, dtype=np.float32)
    ids, cams = np.array([1, 1, 2, 2]), np.zeros(4, dtype=int)
    with pytest.raises(ValueError, match="protocol='no-camera'"):
        evaluate_reid(features, features.copy(), ids, ids, cams, cams)
    with pytest.raises(ValueError, match="no-camera"):
        evaluate_reid(features, features, ids, ids)  # no camera ids at all


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(gallery_features=np.zeros((0, 4))), "empty"),
        (dict(query_ids=[1, 2]), "query_ids.*3 feature rows"),
        (dict(gallery_cams=[0]), "gallery_cams"),
        (dict(gallery_features=np.full((5, 4), np.nan)), "NaN"),
        (dict(gallery_features=np.ones((5, 3))), "dimension 3, expected 4"),
        (dict(query_features=np.ones(4)), "shape"),
        (dict(protocol="duke"), "protocol"),
        (dict(metric="manhattan"), "metric"),
        (dict(max_rank=0), "max_rank"),
    ],
)
def test_bad_inputs(change, message):
    arguments = dict(
        query_features=np.ones((3, 4)),
        gallery_features=np.ones((5, 4)),
        query_ids=[1, 2, 3],
        gallery_ids=[1, 2, 3, 4, 5],
        query_cams=[0, 0, 0],
        gallery_cams=[1, 1, 1, 1, 1],
    )
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        evaluate_reid(**arguments)


# Allowance on top of `memory_budget_mb` for what outlives the chunks or comes before them: the per-query outputs
# (average precisions, mINP terms, CMC histogram: a few KB here) and the input checks' temporaries (an
# `isfinite` mask of the gallery features: 40 KB here).
_OUTPUT_ALLOWANCE_BYTES = 256 * 2**10


@pytest.mark.parametrize(
    "num_ids, protocol",
    [
        (3, "market1501"),  # the audited case, scaled down
        (1, "market1501"),  # every gallery item of another camera is a positive: the window is the whole gallery
        (1, "no-camera"),
        (1, "cuhk03"),
    ],
)
def test_memory_budget_holds_in_the_worst_case(num_ids, protocol):
    import tracemalloc

    rng = np.random.default_rng(0)
    num_query, num_gallery, budget_mb = 120, 10_000, 8.0
    qf = rng.normal(size=(num_query, 4)).astype(np.float32)
    gf = rng.normal(size=(num_gallery, 4)).astype(np.float32)
    qi, gi = rng.integers(1, num_ids + 1, num_query), rng.integers(1, num_ids + 1, num_gallery)
    qc, gc = np.zeros(num_query, dtype=np.int64), rng.integers(0 if num_ids > 1 else 1, 6, num_gallery)
    arguments = dict(protocol=protocol, show_progress=False)
    tracemalloc.start()
    try:
        result = evaluate_reid(qf, gf, qi, gi, qc, gc, memory_budget_mb=budget_mb, **arguments)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= budget_mb * 2**20 + _OUTPUT_ALLOWANCE_BYTES, f"peak {peak / 2**20:.2f} MB > budget {budget_mb} MB"
    # chunking does not change the results
    assert_same_results(result, evaluate_reid(qf, gf, qi, gi, qc, gc, memory_budget_mb=512.0, **arguments), 50)
