"""benchmarks/bench_tracking.py: one row per boxes-per-frame with both rates and their ratio (tiny model, never timed)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_tracking

from hf_lareid.tracking import ReIDBackend


def test_a_row_has_both_rates_and_the_boxes_are_inside_the_frame(tiny_model, tiny_image_processor):
    frame, boxes = bench_tracking.frame_and_boxes(8)
    assert boxes.shape == (8, 4) and (boxes[:, 2] <= frame.shape[1]).all() and (boxes[:, 3] <= frame.shape[0]).all()
    backend = ReIDBackend(tiny_model, tiny_image_processor, runtime="torch")
    row = bench_tracking.measure(backend, 2, rounds=1)  # checks embed_boxes == extract_features on the crops first
    assert row["boxes_per_frame"] == 2 and row["embed_boxes_per_s"] > 0 and row["crops_in_memory_per_s"] > 0
    assert abs(row["ratio"] - row["embed_boxes_per_s"] / row["crops_in_memory_per_s"]) < 0.01 * row["ratio"] + 1e-3
