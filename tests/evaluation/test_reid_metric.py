"""The local `evaluate` metric module gives the same numbers as evaluate_reid."""

import evaluate
import numpy as np
import pytest

from hf_lareid.evaluation import REID_METRIC_PATH, evaluate_reid


def test_metric_module_matches_evaluate_reid():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 8)).astype(np.float32)
    ids, cams = rng.integers(0, 6, 60), rng.integers(0, 3, 60)
    is_query = np.arange(60) < 15
    metric = evaluate.load(REID_METRIC_PATH)
    for start in range(0, 60, 20):  # streaming through add_batch
        rows = slice(start, start + 20)
        metric.add_batch(
            embeddings=features[rows].tolist(),
            person_ids=ids[rows].tolist(),
            camera_ids=cams[rows].tolist(),
            is_query=is_query[rows].tolist(),
        )
    result = metric.compute(max_rank=10)
    expected = evaluate_reid(features[:15], features[15:], ids[:15], ids[15:], cams[:15], cams[15:], max_rank=10)
    assert result["mAP"] == pytest.approx(expected["mAP"], abs=1e-9)
    assert result["mINP"] == pytest.approx(expected["mINP"], abs=1e-9)
    np.testing.assert_allclose(result["cmc"], expected["cmc"])
    with pytest.raises(ValueError, match="is_query"):
        metric.compute(
            embeddings=features.tolist(), person_ids=ids.tolist(), camera_ids=cams.tolist(), is_query=[False] * 60
        )
