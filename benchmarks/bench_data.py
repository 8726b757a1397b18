"""First load vs cached load of a generated 5,000-image Market-1501-layout folder.

The claim (issue "Datasets"): the second load of the same folder comes from the Arrow cache and is at least 5x faster
than the first. The baseline is the first load (listing, parsing, decoding every image once, writing Arrow) in the
same run; the cached load still lists and stats the folder to compute the cache key. Also reports how fast the
synthetic generator draws images (claim: 1,000 images in a few seconds).

Run: ``python benchmarks/bench_data.py [--num-images 5000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import datasets
from _common import add_results_dir_argument, print_cpu_info, write_results  # benchmarks/_common.py

from hf_lareid.data import generate_synthetic_reid, load_reid_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3, help="cached loads to time (median reported)")
    add_results_dir_argument(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    datasets.disable_progress_bars()

    num_cameras, images_per_camera = 4, 4
    num_ids = args.num_images // (num_cameras * images_per_camera)
    num_distractors = args.num_images - num_ids * num_cameras * images_per_camera
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, cache_dir = Path(tmp) / "market_layout", Path(tmp) / "cache"
        start = time.perf_counter()
        generate_synthetic_reid(
            data_dir,
            num_ids=num_ids,
            num_cameras=num_cameras,
            images_per_camera=images_per_camera,
            num_distractors=num_distractors,
        )
        generate_s = time.perf_counter() - start

        start = time.perf_counter()
        first = load_reid_dataset("market1501", data_dir=data_dir, cache_dir=cache_dir)
        first_s = time.perf_counter() - start
        rows = sum(split.num_rows for split in first.values())

        cached = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            load_reid_dataset("market1501", data_dir=data_dir, cache_dir=cache_dir)
            cached.append(time.perf_counter() - start)
        cached_s = statistics.median(cached)

    print_cpu_info()
    print(
        f"datasets {datasets.__version__}; {rows} images ({num_ids} ids x {num_cameras} cameras x "
        f"{images_per_camera} + {num_distractors} distractors), 128x64 JPEG"
    )
    print()
    print("| step | time (s) | note |")
    print("|---|---:|---|")
    print(f"| generate_synthetic_reid | {generate_s:.2f} | {rows / generate_s:,.0f} images/s |")
    print(f"| first load (baseline: parse + decode-check + write Arrow) | {first_s:.3f} | fresh cache dir |")
    print(f"| cached load (median of {args.repeats}) | {cached_s:.3f} | lists + stats the folder for the key |")
    print(f"| speed-up of the cached load | {first_s / cached_s:.1f}x | claim: >= 5x |")
    config = {"images": rows, "repeats": args.repeats, "datasets": datasets.__version__}
    steps = [
        ("generate_synthetic_reid", generate_s, False, None),
        ("first load (parse + decode-check + write Arrow)", first_s, True, 1.0),
        (f"cached load (median of {args.repeats})", cached_s, False, first_s / cached_s),
    ]
    write_results(
        "data_loading",
        [
            {
                **config,
                "step": step,
                "baseline": baseline,
                "seconds": seconds,
                "images_per_s": rows / seconds,
                "speedup_vs_first_load": speedup,
            }
            for step, seconds, baseline, speedup in steps
        ],
        args.results_dir,
    )


if __name__ == "__main__":
    main()
