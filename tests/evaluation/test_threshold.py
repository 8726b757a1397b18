"""Verification threshold against brute force over all pairs."""

import itertools

import numpy as np
import pytest

from hf_lareid.evaluation import calibrate_threshold, calibrate_threshold_from_scores


def brute_force(features, ids, target):
    normalized = features / np.linalg.norm(features, axis=1, keepdims=True)
    pairs = [(i, j) for i, j in itertools.combinations(range(len(ids)), 2) if ids[i] != -1 and ids[j] != -1]
    scores = np.array([normalized[i] @ normalized[j] for i, j in pairs])
    same = np.array([ids[i] == ids[j] for i, j in pairs])
    best = None
    for threshold in np.sort(scores):  # smallest threshold whose FMR (score > threshold) is within the target
        if np.mean(scores[~same] > threshold) <= target:
            best = threshold
            break
    return best, np.mean(scores[~same] > best), np.mean(scores[same] > best), same.sum(), (~same).sum()


@pytest.mark.parametrize("target", [0.01, 0.05, 0.3])
@pytest.mark.parametrize("chunk_size", [7, 1024])
def test_matches_brute_force(target, chunk_size):
    rng = np.random.default_rng(0)
    ids = rng.integers(-1, 8, size=60)
    features = rng.normal(size=(8, 16))[np.maximum(ids, 0)] + 0.8 * rng.normal(size=(60, 16))
    result = calibrate_threshold(features, ids, target, chunk_size=chunk_size)
    threshold, fmr, tmr, num_genuine, num_impostor = brute_force(features, ids, target)
    assert result.threshold == pytest.approx(threshold, abs=1e-5)
    assert result.false_match_rate == pytest.approx(fmr) and result.false_match_rate <= target
    assert result.true_match_rate == pytest.approx(tmr)
    assert (result.num_genuine_pairs, result.num_impostor_pairs) == (num_genuine, num_impostor)
    assert 0.3 < result.true_match_rate <= 1.0  # clustered identities: most genuine pairs pass


def test_from_scores_with_ties():
    scores = [0.9, 0.8, 0.5, 0.5, 0.5, 0.1]
    same = [True, True, True, False, False, False]
    result = calibrate_threshold_from_scores(scores, same, target_false_match_rate=0.5)
    # one impostor of three may pass, but two impostors tie at 0.5: only the threshold 0.5 keeps FMR <= 0.5
    assert result.threshold == 0.5
    assert result.false_match_rate == 0.0 and result.true_match_rate == pytest.approx(2 / 3)
    assert result.to_dict()["num_impostor_pairs"] == 3


def test_bad_inputs():
    features = np.eye(4)
    with pytest.raises(ValueError, match="target_false_match_rate"):
        calibrate_threshold(features, [0, 0, 1, 1], 0.0)
    with pytest.raises(ValueError, match="same-person"):
        calibrate_threshold(features, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="different-person"):
        calibrate_threshold(features, [5, 5, 5, 5])
    with pytest.raises(ValueError, match="person_ids"):
        calibrate_threshold(features, [0, 0, 1])
    with pytest.raises(ValueError, match="NaN"):
        calibrate_threshold(np.full((4, 2), np.nan), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="must match"):
        calibrate_threshold_from_scores([0.1, 0.2], [True])


def test_the_calibration_names_its_data_and_round_trips_as_a_dict():
    from hf_lareid.evaluation import ThresholdCalibration

    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(6), 4)
    features = rng.normal(size=(6, 8))[ids] + 0.5 * rng.normal(size=(24, 8))
    result = calibrate_threshold(features, ids, 0.1, calibrated_on="six people")
    assert result.calibrated_on == "six people"
    assert ThresholdCalibration.from_dict(result.to_dict()) == result
    assert calibrate_threshold_from_scores([0.9, 0.1], [True, False], 0.5).calibrated_on is None
    with pytest.raises(ValueError, match=r"needs the fields \['false_match_rate'"):
        ThresholdCalibration.from_dict({"threshold": 0.5})
