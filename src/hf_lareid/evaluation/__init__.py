"""Evaluation on arrays: re-ID metrics, k-reciprocal re-ranking and the verification threshold (no model needed)."""

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

__all__ = [
    "DISTRACTOR_ID",
    "JUNK_ID",
    "METRICS",
    "PROTOCOLS",
    "ReIDSplit",
    "compute_distance_matrix",
    "evaluate_distance_matrix",
    "evaluate_reid",
    "evaluate_reid_many",
    "format_results_table",
]
