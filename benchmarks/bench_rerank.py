"""Blockwise sparse re_rank vs the authors' dense implementation: time and peak memory at growing sizes.

Run: python benchmarks/bench_rerank.py [--dense-max 6000]

Each measurement runs in its own subprocess and reports its peak resident memory (ru_maxrss, which includes the
~0.3-0.5 GB of the Python/numpy/torch process itself) and the re-ranking time. The dense baseline is
`dense_re_ranking` from tests/evaluation/test_rerank.py (the authors' code, stable argsort); it is skipped above
`--dense-max` images (queries + gallery), where its N x N matrices get too large or slow. Features: 256-d, unit norm,
751 clustered identities. Where both run, the largest absolute difference of their outputs is printed.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import print_cpu_info

SIZES = [(200, 1000), (500, 2500), (1000, 5000), (3368, 19732)]


def features(num_query: int, num_gallery: int):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(751, 256)).astype(np.float32)
    data = centers[rng.integers(0, 751, num_query + num_gallery)]
    data += 1.5 * rng.normal(size=data.shape).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    return data[:num_query], data[num_query:]


def worker(implementation: str, num_query: int, num_gallery: int, output: str) -> None:
    query, gallery = features(num_query, num_gallery)
    if implementation == "dense":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "evaluation"))
        from test_rerank import dense_re_ranking as run
    else:
        from hf_lareid.evaluation import re_rank

        def run(query, gallery):
            return re_rank(query, gallery, show_progress=False)

    start = time.perf_counter()
    distances = run(query, gallery)
    elapsed = time.perf_counter() - start
    np.save(output, distances)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"seconds": elapsed, "peak_gb": peak_gb}))


def measure(implementation: str, num_query: int, num_gallery: int, output: str) -> dict:
    command = [sys.executable, __file__, "--worker", implementation, str(num_query), str(num_gallery), output]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dense-max", type=int, default=6000)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), int(args.worker[2]), args.worker[3])
        return
    print_cpu_info()
    print(
        "| queries x gallery | re_rank (s) | re_rank peak RSS (GB) | dense (s) | dense peak RSS (GB) | max abs diff |"
    )
    print("|---|---|---|---|---|---|")
    tmp = Path("/tmp") / f"bench_rerank_{np.random.randint(1 << 30)}"
    for num_query, num_gallery in SIZES:
        sparse = measure("sparse", num_query, num_gallery, f"{tmp}_sparse.npy")
        row = f"| {num_query} x {num_gallery} | {sparse['seconds']:.1f} | {sparse['peak_gb']:.2f} |"
        if num_query + num_gallery <= args.dense_max:
            dense = measure("dense", num_query, num_gallery, f"{tmp}_dense.npy")
            difference = np.abs(np.load(f"{tmp}_sparse.npy") - np.load(f"{tmp}_dense.npy")).max()
            row += f" {dense['seconds']:.1f} | {dense['peak_gb']:.2f} | {difference:.1e} |"
        else:
            n = num_query + num_gallery
            row += (
                f" skipped (> {args.dense_max} images; its N x N float32 matrices alone: "
                f"{5 * 4 * n * n / 2**30:.0f} GB) | - | - |"
            )
        print(row, flush=True)
    for suffix in ("_sparse.npy", "_dense.npy"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
