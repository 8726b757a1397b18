"""benchmarks/bench_runtimes.py: the runtimes table at tiny size, one repeat (not timed)."""

import csv
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_runtimes

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def test_runtimes_table_has_every_runtime_and_equal_embeddings(capsys, results_dir):
    rows = bench_runtimes.main(["--setups", "tiny", "--batch_sizes", "1", "3", "--repeats", "1"])
    out = capsys.readouterr().out
    runtimes = [row["key"] for row in rows if row["batch"] == 1]
    assert (
        runtimes[0] == bench_runtimes.EAGER
        and bench_runtimes.ORT in runtimes
        and runtimes[-1] == bench_runtimes.DEFAULT
    )
    assert [row["batch"] for row in rows] == [1] * len(runtimes) + [3] * len(runtimes)
    for row in rows:
        assert row["max_abs_diff"] < 1e-4, row
        assert row["img_s"] > 0 and (row["gflops"] is None) == (row["key"] == bench_runtimes.DEFAULT)
    eager = next(row for row in rows if row["key"] == bench_runtimes.EAGER)
    assert eager["vs_eager"] == pytest.approx(1.0) and eager["max_abs_diff"] == 0.0
    table_rows = [line for line in out.splitlines() if line.startswith("| tiny |")]
    assert len(table_rows) == len(rows)
    assert sum(line.startswith("goal tiny batch ") for line in out.splitlines()) == 2
    with open(results_dir / "runtimes.csv", newline="") as f:
        written = list(csv.DictReader(f))
    assert [(row["runtime"], row["baseline"]) for row in written] == [
        (row["runtime"], str(row["key"] == bench_runtimes.EAGER)) for row in rows
    ]


def test_fresh_weights_table_counts_the_export(capsys):
    rows = bench_runtimes.main(["--fresh_weights", "8"])
    out = capsys.readouterr().out
    assert {row["geometry"] for row in rows} == {"tiny", "tiny, patch 16"}
    for row in rows:
        if row["runtime"] == bench_runtimes.EAGER:
            assert row["export_s"] == 0.0 and row["break_even"] is None
        else:  # the export is part of the total, and the break-even is a count of images (or never)
            assert 0 < row["export_s"] < row["total_s"] and row["break_even"] > 0
    assert sum(line.startswith("| tiny") for line in out.splitlines()) == len(rows)
