"""The results table of `lareid evaluate` and `lareid demo`: one Markdown row per split, in percent."""

import numpy as np

from hf_lareid.evaluation import evaluate_reid
from hf_lareid.evaluation.results_table import format_results_table


def test_one_row_per_split_in_percent():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(12, 4)).astype(np.float32)
    ids = np.repeat(np.arange(1, 5), 3)
    rows = [
        {
            "name": name,
            **evaluate_reid(features, features, ids, ids, protocol="no-camera", metric=metric, show_progress=False),
        }
        for name, metric in (("a", "euclidean"), ("b", "cosine"))
    ]
    table = format_results_table(rows)
    assert table.splitlines()[0].startswith("| name | Rank-1")
    assert len(table.splitlines()) == 4
    assert f"| a | {100 * rows[0]['rank1']:.1f} |" in table
    assert f"| b | {100 * rows[1]['rank1']:.1f} |" in table
