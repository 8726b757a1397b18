"""The benchmark scripts run at tiny sizes here: their results go to a temporary folder, never benchmarks/results."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


@pytest.fixture(autouse=True)
def results_dir(tmp_path, monkeypatch):
    """The folder `write_results` writes to in this test (via $HF_LAREID_BENCH_RESULTS)."""
    folder = tmp_path / "bench-results"
    monkeypatch.setenv("HF_LAREID_BENCH_RESULTS", str(folder))
    return folder
