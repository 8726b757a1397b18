"""GalleryIndex types on 200,000 unit vectors of dimension 768: build time, queries/s, recall@10 and bytes per vector,
then the memory of a memory-mapped gallery of 1,000,000 vectors.

Run: python benchmarks/bench_index.py [--size 200000] [--queries 1000] [--uniform-types flat ivf ivfpq hnsw]
                                      [--mmap_vectors 1000000]

Two galleries: "uniform" (random directions, the hardest case for approximate search; reported only) and
"clustered" (2,000 identity-like clusters, as re-ID embeddings are). Every index type runs on both by default
(the hnsw build on the uniform set alone takes ~4 min on 2 cores; `--uniform-types flat ivf` skips it).
Recall@10 = share of the exact top-10 found. The baseline is exact FAISS search (IndexFlatIP), in the same run; exact
torch matmul + topk is timed too. Bytes per vector: `index.faiss` on disk / size; "RAM, mmap" is what stays in
anonymous memory when loaded with `mmap=True` (ivfpq_refine: everything but its refinement codes; flat, ivf, hnsw:
their vectors are mapped).

Goal on "clustered": recall@10 >= 0.95 at >= 10x the exact queries/s, with at most 1/3 of the flat index's bytes in
RAM, or at most 1/8 in RAM with the rest memory-mapped from disk.

Then (`--mmap_vectors N`, 0 skips): a clustered gallery of N vectors in a flat and an ivfpq_refine index, each loaded
in a fresh process in memory and with `mmap=True`: anonymous memory added by the load (`RssAnon` of
/proc/self/status; mapped file pages a search touches count in RSS, not in RssAnon) and queries/s.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import print_cpu_info
from hf_lareid.retrieval import GalleryIndex

CONFIGS = [
    ("flat", {}, {}),
    ("ivf", dict(nlist=1024), dict(nprobe=8)),
    ("ivf", dict(nlist=1024), dict(nprobe=32)),
    ("ivfpq", dict(nlist=1024, pq_m=96), dict(nprobe=32)),
    ("ivfpq_refine", dict(nlist=1024), {}),  # nprobe chosen at training time on a held-out sample
    ("hnsw", dict(hnsw_m=32, ef_construction=64), dict(ef_search=64)),
    ("hnsw", dict(hnsw_m=32, ef_construction=64), dict(ef_search=128)),
]
INDEX_TYPES = ("flat", "ivf", "ivfpq", "ivfpq_refine", "hnsw")
REFINE_BYTES = {"SQ8": 1, "SQfp16": 2, "Flat": 4}  # bytes per dimension of the refinement copy


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


def bytes_per_vector(index: GalleryIndex, folder: Path) -> tuple[float, float]:
    """(bytes per vector of `index.faiss`, of them what stays in RAM when loaded with mmap=True)."""
    index.save(folder)
    total = (folder / "index.faiss").stat().st_size / len(index)
    if index.index_type == "ivfpq_refine":
        return total, total - REFINE_BYTES[index.settings["refine"]] * index.dim
    if index.index_type == "ivfpq":
        return total, total - index.settings["pq_m"] - 8  # its lists (codes + ids) are mapped
    return total, total - 4 * index.dim - (8 if index.index_type == "ivf" else 0)


def compare_types(args) -> None:
    print("| data | index | build (s) | queries/s | speed vs exact | recall@10 | bytes/vector RAM | RAM, mmap | disk |")
    print("|---|---|---|---|---|---|---|---|---|")
    verdicts = []
    for kind in ("clustered", "uniform"):
        gallery, queries = make_data(kind, args.size, args.queries)
        gallery_t, queries_t = torch.from_numpy(gallery), torch.from_numpy(queries)
        start = time.perf_counter()
        for block in torch.split(queries_t, 250):
            torch.topk(block @ gallery_t.T, 10, dim=1)
        torch_qps = args.queries / (time.perf_counter() - start)
        exact_ids = exact_qps = flat_bytes = None
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
                with tempfile.TemporaryDirectory() as folder:
                    sizes = bytes_per_vector(index, Path(folder) / "index")
                built[key] = (index, time.perf_counter() - start, sizes)
            index, build_time, (disk_bytes, mmap_ram_bytes) = built[key]
            index.set_search_parameters(**search_kwargs)
            start = time.perf_counter()
            hits = index.search(queries, k=10).indices
            qps = args.queries / (time.perf_counter() - start)
            if exact_ids is None:
                exact_ids, exact_qps, flat_bytes = hits, qps, disk_bytes
            recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(hits, exact_ids)])
            shown = {**build_kwargs, **search_kwargs}
            if index_type == "ivfpq_refine":
                shown.update(nprobe=index.settings["nprobe"], refine=index.settings["refine"],
                             k_factor=index.settings["refine_k_factor"])
            settings = ", ".join(f"{k}={v}" for k, v in shown.items())
            print(f"| {kind} | {index_type} ({settings or 'exact'}) | {build_time:.1f} | {qps:,.0f} | "
                  f"{qps / exact_qps:.1f}x | {recall:.3f} | {disk_bytes:,.0f} ({disk_bytes / flat_bytes:.2f}) | "
                  f"{mmap_ram_bytes:,.0f} ({mmap_ram_bytes / flat_bytes:.2f}) | {disk_bytes:,.0f} |", flush=True)
            if kind == "clustered" and index_type != "flat":
                fits = disk_bytes <= flat_bytes / 3 or mmap_ram_bytes <= flat_bytes / 8
                if recall >= 0.95 and qps >= 10 * exact_qps and fits:
                    verdicts.append(f"{index_type} ({settings})")
        print(f"| {kind} | torch matmul + topk (exact) | 0 | {torch_qps:,.0f} | {torch_qps / exact_qps:.1f}x | 1.000 | "
              f"| | |", flush=True)
        del built
    print(f"\nGoal (clustered: recall@10 >= 0.95, >= 10x exact queries/s, RAM <= 1/3 flat or <= 1/8 with mmap): "
          f"{'MET by ' + '; '.join(verdicts) if verdicts else 'NOT met'} (size {args.size:,})")


def measure_mmap(args) -> None:
    """Builds flat and ivfpq_refine indexes of `args.mmap_vectors` vectors and loads each in a fresh process."""
    gallery, queries = make_data("clustered", args.mmap_vectors, args.queries, seed=2)
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "queries.npy", queries)
        for index_type in ("flat", "ivfpq_refine"):
            index = GalleryIndex(768, index_type, nlist=1024 if index_type != "flat" else None)
            if index.needs_training:
                index.train(gallery[np.random.default_rng(1).choice(len(gallery), args.training_size, False)])
            for start in range(0, len(gallery), 100_000):
                index.add(gallery[start:start + 100_000])
            index.save(Path(folder) / index_type)
            size_mb = (Path(folder) / index_type / "index.faiss").stat().st_size / 2**20
            del index
            for mmap in (False, True):
                output = subprocess.run(
                    [sys.executable, __file__, "--_load_and_search", str(Path(folder) / index_type)]
                    + (["--_mmap"] if mmap else []),
                    check=True, capture_output=True, text=True,
                ).stdout
                result = json.loads(output.strip().splitlines()[-1])
                print(f"| {index_type} | {args.mmap_vectors:,} | {size_mb:,.0f} | {'mmap' if mmap else 'in memory'} | "
                      f"{result['rss_anon_mb']:+,.0f} | {result['qps']:,.0f} |", flush=True)


def load_and_search(folder: str, mmap: bool) -> None:
    """Child process of `measure_mmap`: prints JSON with the RssAnon the load added (MB) and queries/s."""
    queries = np.load(Path(folder).parent / "queries.npy")
    before = rss_anon_mb()
    index = GalleryIndex.load(folder, mmap=mmap)
    index.search(queries[:10], k=10)  # first pages in
    start = time.perf_counter()
    index.search(queries, k=10)
    qps = len(queries) / (time.perf_counter() - start)
    print(json.dumps({"rss_anon_mb": rss_anon_mb() - before, "qps": qps}))


def rss_anon_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no RssAnon in /proc/self/status (Linux only)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--training-size", type=int, default=50_000)
    parser.add_argument("--uniform-types", nargs="+", default=list(INDEX_TYPES), choices=INDEX_TYPES,
                        help="index types run on the uniform set (default: all; its hnsw build alone takes ~4 min "
                             "on 2 cores)")
    parser.add_argument("--pq-training-size", type=int, default=10_000, help="ivfpq trains slowly: a smaller sample")
    parser.add_argument("--mmap_vectors", "--mmap-vectors", type=int, default=1_000_000,
                        help="gallery size of the mmap measurement (0 skips it)")
    parser.add_argument("--_load_and_search", help=argparse.SUPPRESS)
    parser.add_argument("--_mmap", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._load_and_search:
        load_and_search(args._load_and_search, args._mmap)
        return
    print_cpu_info()
    compare_types(args)
    if args.mmap_vectors:
        print("\n| index | vectors | index.faiss (MB) | load | RssAnon added (MB) | queries/s |")
        print("|---|---|---|---|---|---|")
        measure_mmap(args)


if __name__ == "__main__":
    main()
