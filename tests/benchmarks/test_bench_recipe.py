"""benchmarks/bench_recipe.py: the stripe colour-histogram baseline and the results table (tiny sizes, no training)."""

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_recipe  # noqa: E402

from hf_lareid.data import generate_synthetic_reid, load_reid_dataset  # noqa: E402


def test_stripe_histogram_is_a_unit_norm_per_stripe_hsv_histogram():
    red_top = np.zeros((128, 64, 3), dtype=np.uint8)
    red_top[:64] = (255, 0, 0)
    red_top[64:] = (0, 0, 255)
    feature = bench_recipe.stripe_histogram(Image.fromarray(red_top))
    bins = int(np.prod(bench_recipe.HSV_BINS))
    assert feature.shape == (bench_recipe.STRIPES * bins,) and np.linalg.norm(feature) == pytest.approx(1.0)
    stripes = feature.reshape(bench_recipe.STRIPES, bins)
    assert (np.count_nonzero(stripes, axis=1) == 1).all()  # one colour per stripe: one bin each
    assert stripes[0].argmax() != stripes[-1].argmax()  # red top, blue bottom
    flipped = bench_recipe.stripe_histogram(Image.fromarray(red_top[::-1].copy()))
    assert float(feature @ flipped) < 0.5  # upside down is another person for a stripe histogram
    grey = bench_recipe.stripe_histogram(Image.fromarray(red_top).convert("L"))  # any mode goes through
    assert grey.shape == feature.shape


def test_histogram_baseline_and_table_on_a_tiny_generated_set(tmp_path):
    root = generate_synthetic_reid(tmp_path / "people", num_ids=8, num_cameras=2, images_per_camera=2)
    data = load_reid_dataset("market1501", data_dir=root, cache_dir=tmp_path / "cache")
    metrics = bench_recipe.evaluate_histogram((data["query"], data["gallery"]))
    assert 0.0 <= metrics["rank1"] <= metrics["rank5"] <= 1.0 and 0.0 < metrics["mAP"] <= 1.0
    assert metrics["num_queries"] == len(data["query"])
    rows = [{"name": "histogram", "sets": {"set 1": metrics, "set 2": metrics}}]
    table = bench_recipe.format_table(rows, ["set 1", "set 2"])
    lines = table.splitlines()
    assert lines[0].startswith("| method | set 1 Rank-1 | set 1 Rank-5 | set 1 mAP | set 2 Rank-1")
    assert (
        lines[2]
        == "| histogram | "
        + " | ".join(
            [f"{100 * metrics['rank1']:.1f}", f"{100 * metrics['rank5']:.1f}", f"{100 * metrics['mAP']:.1f}"] * 2
        )
        + " |"
    )
