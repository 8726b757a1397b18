"""Blockwise sparse re_rank vs the authors' dense implementation: time and peak memory at growing sizes.

Run: python benchmarks/bench_rerank.py [--dense-max 6000] [--sizes 200x1000 500x2500 1000x5000 3368x19732]

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
from _common import add_results_dir_argument, print_cpu_info, write_results

SIZES = ["200x1000", "500x2500", "1000x5000", "3368x19732"]  # queries x gallery


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
    parser.add_argument("--sizes", nargs="+", default=SIZES, help="QUERIESxGALLERY sizes (default: %(default)s)")
    add_results_dir_argument(parser)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), int(args.worker[2]), args.worker[3])
        return
    try:
        sizes = [tuple(int(n) for n in size.lower().split("x")) for size in args.sizes]
    except ValueError:
        parser.error(f"--sizes: expected QUERIESxGALLERY like 200x1000, got {' '.join(args.sizes)}")
    if all(sum(size) > args.dense_max for size in sizes):
        parser.error("no size within --dense-max: the dense baseline must run on one of --sizes at least")
    print_cpu_info()
    print(
        "| queries x gallery | re_rank (s) | re_rank peak RSS (GB) | dense (s) | dense peak RSS (GB) | max abs diff |"
    )
    print("|---|---|---|---|---|---|")
    tmp = Path("/tmp") / f"bench_rerank_{np.random.randint(1 << 30)}"
    results = []
    for num_query, num_gallery in sizes:
        sparse = measure("sparse", num_query, num_gallery, f"{tmp}_sparse.npy")
        row = f"| {num_query} x {num_gallery} | {sparse['seconds']:.1f} | {sparse['peak_gb']:.2f} |"
        size = {"queries": num_query, "gallery": num_gallery}
        results.append({**size, "implementation": "re_rank (blockwise sparse)", "baseline": False, **sparse})
        if num_query + num_gallery <= args.dense_max:
            dense = measure("dense", num_query, num_gallery, f"{tmp}_dense.npy")
            difference = np.abs(np.load(f"{tmp}_sparse.npy") - np.load(f"{tmp}_dense.npy")).max()
            row += f" {dense['seconds']:.1f} | {dense['peak_gb']:.2f} | {difference:.1e} |"
            results[-1]["max_abs_diff_vs_dense"] = float(difference)
            results.append({**size, "implementation": "authors' dense re-ranking", "baseline": True, **dense})
        else:
            n = num_query + num_gallery
            row += (
                f" skipped (> {args.dense_max} images; its N x N float32 matrices alone: "
                f"{5 * 4 * n * n / 2**30:.0f} GB) | - | - |"
            )
        print(row, flush=True)
    for suffix in ("_sparse.npy", "_dense.npy"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    write_results("rerank", results, args.results_dir)


if __name__ == "__main__":
    main()
