"""evaluate_reid vs a plain per-query loop at Market-1501 size (3,368 queries x 19,732 gallery images).

Run: python benchmarks/bench_metrics.py [--loop-queries N] [--dims 256 10752]

The baseline is the classic implementation (torchreid's eval_market1501 plus mINP): the full distance matrix with
one matrix product, then per query a full argsort, filtering, cumulative match and average precision. By default
the loop runs on all 3,368 queries; `--loop-queries N` times it on the first N only and extrapolates to all of them
(the table then says "extrapolated"). Both run on the same synthetic features in the same process; the metrics of
both are compared on the queries the loop ran on. `--num-query` / `--num-gallery` shrink the data for smoke runs.
"""

import argparse
import time

import numpy as np
from _common import add_results_dir_argument, print_cpu_info, write_results

from hf_lareid.evaluation import evaluate_reid


def market_like(dim: int, num_query: int = 3368, num_gallery: int = 19732, seed: int = 0):
    """751 identities, 6 cameras, clustered embeddings; ~8% junk (-1) and ~8% distractors (0) in the gallery."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(752, dim)).astype(np.float32)
    gallery_ids = rng.integers(1, 752, num_gallery)
    query_ids = rng.integers(1, 752, num_query)
    gallery = centers[gallery_ids] + 1.5 * rng.normal(size=(num_gallery, dim)).astype(np.float32) * np.sqrt(256 / dim)
    query = centers[query_ids] + 1.5 * rng.normal(size=(num_query, dim)).astype(np.float32) * np.sqrt(256 / dim)
    special = rng.random(num_gallery)
    gallery_ids[special < 0.08] = -1
    gallery_ids[(special >= 0.08) & (special < 0.16)] = 0
    return query, gallery, query_ids, gallery_ids, rng.integers(0, 6, num_query), rng.integers(0, 6, num_gallery)


def distance_matrix(query, gallery):
    """The baseline's full cosine distance matrix, one matrix product."""
    query = query / np.linalg.norm(query, axis=1, keepdims=True)
    gallery = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    return 1 - query @ gallery.T


def loop_reference(distances, query_ids, gallery_ids, query_cams, gallery_cams):
    """One query (row of `distances`) at a time (returns mAP, mINP, rank-1 over valid queries)."""
    aps, inps, rank1 = [], [], []
    for i in range(len(distances)):
        order = np.argsort(distances[i], kind="stable")
        keep = (gallery_ids[order] != -1) & ~(
            (gallery_ids[order] == query_ids[i]) & (gallery_cams[order] == query_cams[i])
        )
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
    parser.add_argument(
        "--loop-queries",
        type=int,
        default=None,
        help="time the per-query loop on the first N queries only and extrapolate to all of them "
        "(labelled 'extrapolated' in the table); default: all queries, measured",
    )
    parser.add_argument("--dims", type=int, nargs="+", default=[256, 10752])
    parser.add_argument("--num-query", type=int, default=3368, help="smaller for a smoke run")
    parser.add_argument("--num-gallery", type=int, default=19732, help="smaller for a smoke run")
    add_results_dir_argument(parser)
    args = parser.parse_args()
    if args.loop_queries is not None and args.loop_queries <= 0:
        parser.error("--loop-queries must be positive")
    print_cpu_info()
    print(
        "| dim | evaluate_reid (s) | per-query baseline: matrix + loop (s) | speed-up | rank-1 | mAP | mINP "
        "| same numbers |"
    )
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for dim in args.dims:
        query, gallery, query_ids, gallery_ids, query_cams, gallery_cams = market_like(
            dim, args.num_query, args.num_gallery
        )
        num_query = len(query)
        start = time.perf_counter()
        result = evaluate_reid(query, gallery, query_ids, gallery_ids, query_cams, gallery_cams, show_progress=False)
        fast = time.perf_counter() - start

        # the baseline's distance matrix is always computed (and timed) for all queries
        start = time.perf_counter()
        distances = distance_matrix(query, gallery)
        matrix_time = time.perf_counter() - start
        num_loop = num_query if args.loop_queries is None else min(args.loop_queries, num_query)
        start = time.perf_counter()
        reference = loop_reference(
            distances[:num_loop], query_ids[:num_loop], gallery_ids, query_cams[:num_loop], gallery_cams
        )
        loop_time = time.perf_counter() - start
        del distances
        if num_loop < num_query:
            loop_time *= num_query / num_loop
            baseline_label = f"(loop extrapolated from {num_loop} of {num_query} queries)"
            check = evaluate_reid(
                query[:num_loop],
                gallery,
                query_ids[:num_loop],
                gallery_ids,
                query_cams[:num_loop],
                gallery_cams,
                show_progress=False,
            )
        else:
            baseline_label = f"(measured on all {num_query} queries)"
            check = result
        baseline = matrix_time + loop_time
        same = np.allclose([check["mAP"], check["mINP"], check["rank1"]], reference, atol=1e-9)
        print(
            f"| {dim} | {fast:.2f} | {baseline:.2f} {baseline_label} | "
            f"{baseline / fast:.1f}x | {100 * result['rank1']:.1f} | {100 * result['mAP']:.1f} | "
            f"{100 * result['mINP']:.1f} | {same} |",
            flush=True,
        )
        size = {"dim": dim, "queries": num_query, "gallery": args.num_gallery}
        rows.append(
            {
                **size,
                "method": "per-query loop: distance matrix + argsort per query",
                "baseline": True,
                "seconds": baseline,
                "loop_measured_on_queries": num_loop,
                "speedup": 1.0,
                "rank1": reference[2],
                "mAP": reference[0],
                "mINP": reference[1],
            }
        )
        rows.append(
            {
                **size,
                "method": "evaluate_reid",
                "baseline": False,
                "seconds": fast,
                "loop_measured_on_queries": None,
                "speedup": baseline / fast,
                "rank1": result["rank1"],
                "mAP": result["mAP"],
                "mINP": result["mINP"],
                "same_numbers_as_baseline": bool(same),
            }
        )
    write_results("metrics", rows, args.results_dir)


if __name__ == "__main__":
    main()
