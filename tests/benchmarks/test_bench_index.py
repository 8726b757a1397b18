"""benchmarks/bench_index.py: one table row per index type with recall vs flat and the goal judged (tiny size, never
timed)."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_index


def test_table_has_a_row_per_type_flat_is_exact_and_the_goal_is_judged(capsys):
    args = argparse.Namespace(
        num_vectors=1500, queries=20, rounds=1, pq_training_size=1500, types=["ivf", "ivfpq_refine"]
    )
    rows = bench_index.compare_types(args, "clustered")
    assert [row["index_type"] for row in rows] == ["flat", "ivf", "ivfpq_refine", "ivfpq_refine"]
    flat = rows[0]
    assert flat["recall"] == 1.0 and flat["speedup"] == 1.0 and not flat["passed"]
    assert flat["disk_bytes"] >= 4 * bench_index.DIM  # float32 vectors
    for row in rows[1:]:
        assert 0.0 <= row["recall"] <= 1.0 and row["qps"] > 0
        assert row["mmap_ram_bytes"] < row["ram_bytes"]  # something of every type is mapped
    assert rows[2]["recall"] > 0.5  # well above chance (10 of 1500) on clustered data
    assert rows[2]["disk_bytes"] < rows[3]["disk_bytes"]  # int8 refinement copy vs fp16
    printed = capsys.readouterr().out
    assert printed.count("| clustered |") == 4
    assert "\nGoal (clustered, 1,500 x 768" in printed and ("): PASS by " in printed or "): FAIL" in printed)
