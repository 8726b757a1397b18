"""Evaluation on arrays: re-ID metrics, k-reciprocal re-ranking and the verification threshold (no model needed)."""

from pathlib import Path
from typing import Any

from .checks import DISTRACTOR_ID, JUNK_ID
from .distance import METRICS, compute_distance_matrix
from .metrics import evaluate_distance_matrix, evaluate_reid
from .ranking import PROTOCOLS
from .rerank import re_rank
from .threshold import ThresholdCalibration, calibrate_threshold, calibrate_threshold_from_scores

__all__ = [
    "DISTRACTOR_ID",
    "JUNK_ID",
    "load_reid_metric",
    "METRICS",
    "PROTOCOLS",
    "REID_METRIC_PATH",
    "ThresholdCalibration",
    "calibrate_threshold",
    "calibrate_threshold_from_scores",
    "compute_distance_matrix",
    "evaluate_distance_matrix",
    "evaluate_reid",
    "re_rank",
]

REID_METRIC_PATH = str(Path(__file__).parent / "reid_metric")
"""Folder of the `evaluate` metric module: `evaluate.load(REID_METRIC_PATH)`."""


def load_reid_metric(**load_options: Any) -> Any:
    """
    The re-ID metrics as an `evaluate` metric (`evaluate.load(REID_METRIC_PATH, **load_options)`); without the
    `evaluate` package, an ImportError naming the `evaluate` extra.

    Example:

    ```python
    >>> metric = load_reid_metric()
    >>> embeddings = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]  # two queries, then their two matches
    >>> results = metric.compute(embeddings=embeddings, person_ids=[1, 2, 1, 2], camera_ids=[1, 1, 2, 2],
    ...                          is_query=[True, True, False, False])
    >>> float(results["mAP"])
    1.0
    ```
    """
    from ..utils.extras import require_extra

    evaluate = require_extra("evaluate", "evaluate", "The re-ID `evaluate` metric (load_reid_metric)")
    return evaluate.load(REID_METRIC_PATH, **load_options)
