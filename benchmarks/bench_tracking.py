"""The tracker re-ID backend's speed: boxes/s of `ReIDBackend.embed_boxes(frame, boxes)` at 1, 8 and 32 boxes per
frame, against embedding the same crops, already cut and in memory, with `extract_features` (the baseline, measured
in the same run). The difference is the cost of clipping and cropping the boxes out of the frame.

    python benchmarks/bench_tracking.py                       # the tiny setup, random weights, 3 rounds
    python benchmarks/bench_tracking.py --model ./my-model --rounds 5

Appends two rows per boxes-per-frame (the baseline and embed_boxes) to benchmarks/results/tracking.csv (CPU, versions,
date, commit in each row).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _common import add_results_dir_argument, median_and_spread, print_cpu_info, time_throughput, write_results
from PIL import Image

from hf_lareid import LATransformerForReID, extract_features
from hf_lareid.hub.setups import load_setup
from hf_lareid.tracking import ReIDBackend

BOXES_PER_FRAME = (1, 8, 32)


def frame_and_boxes(num_boxes: int, size=(720, 1280), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random `(720, 1280, 3)` frame and `num_boxes` person-shaped boxes (about 2:1) inside it."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    heights = rng.uniform(80, 300, num_boxes)
    x1, y1 = rng.uniform(0, size[1] - 160, num_boxes), rng.uniform(0, size[0] - 300, num_boxes)
    return frame, np.stack([x1, y1, x1 + heights / 2, y1 + heights], axis=1)


def measure(backend: ReIDBackend, num_boxes: int, rounds: int) -> dict:
    frame, boxes = frame_and_boxes(num_boxes)
    crops = [Image.fromarray(frame[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))]) for x1, y1, x2, y2 in boxes]
    options = dict(image_processor=backend.image_processor, runtime=backend.embedder, progress=False)
    np.testing.assert_allclose(
        backend.embed_boxes(frame, boxes), extract_features(backend.model, crops, **options).embeddings, atol=1e-5
    )
    boxes_rate = time_throughput(lambda: backend.embed_boxes(frame, boxes), num_boxes, rounds)
    crops_rate = time_throughput(lambda: extract_features(backend.model, crops, **options), num_boxes, rounds)
    (boxes_median, boxes_spread), (crops_median, crops_spread) = map(median_and_spread, (boxes_rate, crops_rate))
    return {
        "boxes_per_frame": num_boxes,
        "embed_boxes_per_s": round(boxes_median, 1),
        "embed_boxes_spread": round(boxes_spread, 1),
        "crops_in_memory_per_s": round(crops_median, 1),
        "crops_in_memory_spread": round(crops_spread, 1),
        "ratio": round(boxes_median / crops_median, 3),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a saved model folder (default: the tiny setup with random weights)")
    parser.add_argument("--runtime", default="torch", help="auto, torch, onnxruntime, openvino (default: torch)")
    parser.add_argument("--rounds", type=int, default=3, help="timed calls per measurement")
    add_results_dir_argument(parser)
    args = parser.parse_args(argv)
    print_cpu_info()
    if args.model:
        backend = ReIDBackend(args.model, runtime=args.runtime)
        setup = args.model
    else:
        torch.manual_seed(0)
        config, processor, _ = load_setup("tiny")
        backend = ReIDBackend(LATransformerForReID(config), processor, runtime=args.runtime)
        setup = "tiny (random weights)"
    rows = [measure(backend, n, args.rounds) for n in BOXES_PER_FRAME]
    print("| boxes/frame | embed_boxes (boxes/s) | crops in memory (boxes/s) | ratio |")
    print("|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['boxes_per_frame']} | {row['embed_boxes_per_s']} ± {row['embed_boxes_spread']} | "
            f"{row['crops_in_memory_per_s']} ± {row['crops_in_memory_spread']} | {row['ratio']} |"
        )
    common = {"setup": setup, "runtime": backend.embedder.name, "rounds": args.rounds}
    table = [
        {
            **common,
            "boxes_per_frame": row["boxes_per_frame"],
            "method": method,
            "boxes_per_s": row[f"{key}_per_s"],
            "spread": row[f"{key}_spread"],
            "vs_baseline": 1.0 if baseline else row["ratio"],
            "baseline": baseline,
        }
        for row in rows
        for method, key, baseline in (
            ("extract_features on crops in memory", "crops_in_memory", True),
            ("embed_boxes on the frame", "embed_boxes", False),
        )
    ]
    print(f"wrote {write_results('tracking', table, args.results_dir)}")
    return rows


if __name__ == "__main__":
    main()
