"""A recorded verification calibration (the `ThresholdCalibration.to_dict()` form) for the index tests."""


def calibration_record(threshold: float) -> dict:
    """A valid calibration reaching a 0.008 false-match rate at `threshold` (target 0.01)."""
    return {
        "threshold": threshold,
        "target_false_match_rate": 0.01,
        "false_match_rate": 0.008,
        "true_match_rate": 0.9,
        "num_genuine_pairs": 5,
        "num_impostor_pairs": 500,
        "calibrated_on": "x",
    }
