"""evaluate_reid vs a plain per-query loop at Market-1501 size (3,368 queries x 19,732 gallery images).

Run: python benchmarks/bench_metrics.py [--loop-queries 400]

The baseline is the classic implementation (torchreid's eval_market1501 plus mINP): the full distance matrix with
one matrix product, then per query a full argsort, filtering, cumulative match and average precision. The loop is
timed on the first `--loop-queries` queries and extrapolated to all of them (the table says so). Both run on the
same synthetic features in the same process; the metrics of both are compared on those queries.
"""

import argparse
import platform
import time

import numpy as np
import torch

from hf_lareid.evaluation import evaluate_reid


def cpu_summary() -> str:
    flags = open("/proc/cpuinfo").read().split() if platform.system() == "Linux" else []
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line), "?")
    return f"CPU: {model}, {torch.get_num_threads()} threads, avx512f={'avx512f' in flags}, " \
           f"avx512_bf16={'avx512_bf16' in flags}"


def market_like(dim: int, seed: int = 0):
    """751 identities, 6 cameras, clustered embeddings; ~8% junk (-1) and ~8% distractors (0) in the gallery."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(752, dim)).astype(np.float32)
    gallery_ids = rng.integers(1, 752, 19732)
    query_ids = rng.integers(1, 752, 3368)
    gallery = centers[gallery_ids] + 1.5 * rng.normal(size=(19732, dim)).astype(np.float32) * np.sqrt(256 / dim)
    query = centers[query_ids] + 1.5 * rng.normal(size=(3368, dim)).astype(np.float32) * np.sqrt(256 / dim)
    special = rng.random(19732)
    gallery_ids[special < 0.08] = -1
    gallery_ids[(special >= 0.08) & (special < 0.16)] = 0
    return query, gallery, query_ids, gallery_ids, rng.integers(0, 6, 3368), rng.integers(0, 6, 19732)


def loop_reference(query, gallery, query_ids, gallery_ids, query_cams, gallery_cams):
    """Full distance matrix, then one query at a time (returns mAP, mINP, rank-1 over valid queries)."""
    query = query / np.linalg.norm(query, axis=1, keepdims=True)
    gallery = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    distances = 1 - query @ gallery.T
    aps, inps, rank1 = [], [], []
    for i in range(len(query)):
        order = np.argsort(distances[i], kind="stable")
        keep = (gallery_ids[order] != -1) & ~((gallery_ids[order] == query_ids[i]) & (gallery_cams[order] == query_cams[i]))
        matches = gallery_ids[order][keep] == query_ids[i]
        if not matches.any():
            continue
        hits = np.cumsum(matches)
        aps.append((hits[matches] / (np.flatnonzero(matches) + 1)).mean())
        inps.append(matches.sum() / (np.flatnonzero(matches).max() + 1))
        rank1.append(matches[0])
    return float(np.mean(aps)), float(np.mean(inps)), float(np.mean(rank1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loop-queries", type=int, default=400)
    parser.add_argument("--dims", type=int, nargs="+", default=[256, 10752])
    args = parser.parse_args()
    print(cpu_summary())
    print("| dim | evaluate_reid (s) | per-query loop (s) | speed-up | rank-1 | mAP | mINP | same numbers |")
    print("|---|---|---|---|---|---|---|---|")
    for dim in args.dims:
        query, gallery, query_ids, gallery_ids, query_cams, gallery_cams = market_like(dim)
        start = time.perf_counter()
        result = evaluate_reid(query, gallery, query_ids, gallery_ids, query_cams, gallery_cams, show_progress=False)
        fast = time.perf_counter() - start

        subset = slice(0, args.loop_queries)
        start = time.perf_counter()
        # the distance matrix of the baseline is computed for all queries; the loop part is extrapolated
        normalized_q = query / np.linalg.norm(query, axis=1, keepdims=True)
        _ = 1 - normalized_q @ (gallery / np.linalg.norm(gallery, axis=1, keepdims=True)).T
        matrix_time = time.perf_counter() - start
        start = time.perf_counter()
        reference = loop_reference(query[subset], gallery, query_ids[subset], gallery_ids, query_cams[subset],
                                   gallery_cams)
        loop_time = (time.perf_counter() - start) * len(query) / args.loop_queries
        baseline = matrix_time + loop_time
        check = evaluate_reid(query[subset], gallery, query_ids[subset], gallery_ids, query_cams[subset],
                              gallery_cams, show_progress=False)
        same = np.allclose([check["mAP"], check["mINP"], check["rank1"]], reference, atol=1e-9)
        print(f"| {dim} | {fast:.2f} | {baseline:.2f} (loop extrapolated from {args.loop_queries} queries) | "
              f"{baseline / fast:.1f}x | {100 * result['rank1']:.1f} | {100 * result['mAP']:.1f} | "
              f"{100 * result['mINP']:.1f} | {same} |")


if __name__ == "__main__":
    main()
