"""Evaluation on arrays: re-ID metrics, k-reciprocal re-ranking and the verification threshold (no model needed)."""

from pathlib import Path

from .metrics import (
    DISTRACTOR_ID,
    JUNK_ID,
    METRICS,
    PROTOCOLS,
    ReIDSplit,
    compute_distance_matrix,
    evaluate_distance_matrix,
    evaluate_reid,
    evaluate_reid_many,
    format_results_table,
)
from .rerank import re_rank
from .threshold import ThresholdCalibration, calibrate_threshold, calibrate_threshold_from_scores

__all__ = [
    "DISTRACTOR_ID",
    "JUNK_ID",
    "METRICS",
    "PROTOCOLS",
    "REID_METRIC_PATH",
    "ReIDSplit",
    "ThresholdCalibration",
    "calibrate_threshold",
    "calibrate_threshold_from_scores",
    "compute_distance_matrix",
    "evaluate_distance_matrix",
    "evaluate_reid",
    "evaluate_reid_many",
    "format_results_table",
    "re_rank",
]

REID_METRIC_PATH = str(Path(__file__).parent / "reid_metric")
"""Folder of the `evaluate` metric module: `evaluate.load(REID_METRIC_PATH)`."""
