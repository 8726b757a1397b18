"""GalleryIndex types on 200,000 unit vectors of dimension 768: build time, queries/s and recall@10 vs exact search.

Run: python benchmarks/bench_index.py [--size 200000] [--queries 1000] [--uniform-types flat ivf ivfpq hnsw]

Two galleries: "uniform" (random directions, the hardest case for approximate search; reported only) and
"clustered" (2,000 identity-like clusters, as re-ID embeddings are). Every index type runs on both by default
(the hnsw build on the uniform set alone takes ~4 min on 2 cores; `--uniform-types flat ivf` skips it).
Recall@10 = share of the exact top-10 found.
The baseline is exact FAISS search (IndexFlatIP); exact torch matmul + topk is timed in the same run.
Goal on "clustered": an approximate index with recall@10 >= 0.95 at >= 10x the exact queries/s.
"""

import argparse
import time

import numpy as np
import torch

from _common import print_cpu_info
from hf_lareid.retrieval import GalleryIndex

CONFIGS = [
    ("flat", {}, {}),
    ("ivf", dict(nlist=1024), dict(nprobe=8)),
    ("ivf", dict(nlist=1024), dict(nprobe=32)),
    ("ivfpq", dict(nlist=1024, pq_m=96), dict(nprobe=32)),
    ("hnsw", dict(hnsw_m=32, ef_construction=64), dict(ef_search=64)),
    ("hnsw", dict(hnsw_m=32, ef_construction=64), dict(ef_search=128)),
]
INDEX_TYPES = ("flat", "ivf", "ivfpq", "hnsw")


def make_data(kind: str, size: int, num_queries: int, dim: int = 768, seed: int = 0):
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        data = rng.standard_normal((size + num_queries, dim), dtype=np.float32)
    else:
        centers = rng.standard_normal((2000, dim), dtype=np.float32)
        data = centers[rng.integers(0, 2000, size + num_queries)]
        data += 0.8 * rng.standard_normal(data.shape, dtype=np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    return data[:size], data[size:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--training-size", type=int, default=50_000)
    parser.add_argument("--uniform-types", nargs="+", default=list(INDEX_TYPES), choices=INDEX_TYPES,
                        help="index types run on the uniform set (default: all; its hnsw build alone takes ~4 min "
                             "on 2 cores)")
    parser.add_argument("--pq-training-size", type=int, default=10_000, help="ivfpq trains slowly: a smaller sample")
    args = parser.parse_args()
    print_cpu_info()
    print("| data | index | build (s) | queries/s | speed vs exact | recall@10 |")
    print("|---|---|---|---|---|---|")
    for kind in ("clustered", "uniform"):
        gallery, queries = make_data(kind, args.size, args.queries)
        gallery_t, queries_t = torch.from_numpy(gallery), torch.from_numpy(queries)
        start = time.perf_counter()
        for block in torch.split(queries_t, 250):
            torch.topk(block @ gallery_t.T, 10, dim=1)
        torch_qps = args.queries / (time.perf_counter() - start)
        exact_ids, exact_qps = None, None
        built = {}
        for index_type, build_kwargs, search_kwargs in CONFIGS:
            if kind == "uniform" and index_type not in args.uniform_types:
                continue
            key = (index_type, tuple(sorted(build_kwargs.items())))
            if key not in built:
                index = GalleryIndex(768, index_type, **build_kwargs)
                start = time.perf_counter()
                if index.needs_training:
                    sample_size = args.pq_training_size if index_type == "ivfpq" else args.training_size
                    index.train(gallery[np.random.default_rng(1).choice(args.size, sample_size, False)])
                index.add(gallery)
                built[key] = (index, time.perf_counter() - start)
            index, build_time = built[key]
            index.set_search_parameters(**search_kwargs)
            start = time.perf_counter()
            hits = index.search(queries, k=10).indices
            qps = args.queries / (time.perf_counter() - start)
            if exact_ids is None:
                exact_ids, exact_qps = hits, qps
            recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(hits, exact_ids)])
            settings = ", ".join(f"{k}={v}" for k, v in {**build_kwargs, **search_kwargs}.items())
            print(f"| {kind} | {index_type} ({settings or 'exact'}) | {build_time:.1f} | {qps:,.0f} | "
                  f"{qps / exact_qps:.1f}x | {recall:.3f} |", flush=True)
        print(f"| {kind} | torch matmul + topk (exact) | 0 | {torch_qps:,.0f} | {torch_qps / exact_qps:.1f}x | 1.000 |",
              flush=True)
        del built


if __name__ == "__main__":
    main()
