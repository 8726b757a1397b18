"""GalleryIndex types on a generated clustered gallery: recall@10, queries/s and bytes per vector in ONE table, the goal
judged (PASS/FAIL), then the memory of a memory-mapped gallery of 1,000,000 vectors.

Run: python benchmarks/bench_index.py [--num_vectors 200000] [--queries 1000] [--uniform] [--mmap_vectors 1000000]
                                      [--types flat ivf ivfpq ivfpq_refine hnsw] [--threads 2]

The gallery: 2,000 identity-like clusters of unit vectors (dim 768), as re-ID embeddings are; `--uniform` adds random
directions, the hardest case for approximate search (reported only). Recall@10 = share of the exact top-10 found.
The baseline is the exact FAISS index ("flat", IndexFlatIP) on the same queries with the same threads in the same run:
every index is timed `--rounds` times, interleaved with the others, and its median queries/s is reported. The
inverted-list types get nlist = 4 sqrt(N) and train on a sample of 39 * nlist. Bytes per vector: "RAM" = in memory
(`index.faiss` / N), "RAM, mmap" = what stays in anonymous memory when loaded with `mmap=True` (ivfpq_refine: its
fast-scan lists, with the refinement codes mapped; flat, ivf, ivfpq, hnsw: their vectors/lists mapped), "disk" = the
file.

Goal on the clustered set: recall@10 >= 0.95 at >= 10x flat's queries/s, with at most 1/3 of flat's bytes in RAM, or at
most 1/8 in RAM with the rest memory-mapped from disk.

Then (`--mmap_vectors N`, 0 skips): a clustered gallery of N vectors (generated in chunks) in a flat and an ivfpq_refine
index, each loaded in a fresh process in memory and with `mmap=True`: anonymous memory added by the load (`RssAnon` of
/proc/self/status; mapped file pages a search touches count in RSS, not in RssAnon) and queries/s.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
from _common import add_results_dir_argument, print_cpu_info, write_results

from hf_lareid.retrieval import INDEX_TYPES, GalleryIndex

# (index type, build settings, search settings); None nlist = 4 sqrt(N), set in `compare_types`
CONFIGS = [
    ("flat", {}, {}),
    ("ivf", {}, {"nprobe": 16}),
    ("ivfpq", {"pq_m": 96}, {"nprobe": 32}),
    ("ivfpq_refine", {}, {}),  # nprobe chosen at training time on a held-out sample
    ("ivfpq_refine", {"refine": "SQfp16"}, {}),
    ("hnsw", {"hnsw_m": 32, "ef_construction": 64}, {"ef_search": 64}),
]
REFINE_BYTES = {"SQ8": 1, "SQfp16": 2, "Flat": 4}  # bytes per dimension of the refinement copy
NUM_CENTERS, DIM = 2000, 768


def clustered_chunks(size: int, seed: int, chunk: int = 100_000):
    """Yields `(rows, 768)` float32 unit vectors around 2,000 fixed centres, `chunk` rows at a time."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(0).standard_normal((NUM_CENTERS, DIM), dtype=np.float32)
    for start in range(0, size, chunk):
        data = centers[rng.integers(0, NUM_CENTERS, min(chunk, size - start))]
        data += 0.8 * rng.standard_normal(data.shape, dtype=np.float32)
        data /= np.linalg.norm(data, axis=1, keepdims=True)
        yield data


def make_data(kind: str, size: int, num_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`(gallery (size, 768), queries (num_queries, 768))` unit vectors, "clustered" or "uniform"."""
    if kind == "clustered":
        data = np.concatenate(list(clustered_chunks(size + num_queries, seed)))
    else:
        data = np.random.default_rng(seed).standard_normal((size + num_queries, DIM), dtype=np.float32)
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


def queries_per_second(index: GalleryIndex, queries: np.ndarray) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    hits = index.search(queries, k=10).indices
    return len(queries) / (time.perf_counter() - start), hits


def compare_types(args, kind: str) -> list[dict]:
    """Prints one row per index type on the `kind` gallery (and, on "clustered", the PASS/FAIL line of the goal).

    Returns one dict per row: `name`, `index_type`, `baseline` (flat), `build_s`, `recall`, `qps`, `speedup` (vs flat),
    `ram_bytes`, `mmap_ram_bytes`, `disk_bytes` (per vector) and `passed` (whether that row meets the goal).
    """
    gallery, queries = make_data(kind, args.num_vectors, args.queries)
    nlist = int(4 * np.sqrt(args.num_vectors))
    sample = gallery[np.random.default_rng(1).choice(len(gallery), min(len(gallery), 39 * nlist), False)]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for number, (index_type, build_kwargs, search_kwargs) in enumerate(CONFIGS):
            if index_type not in ("flat", *args.types) or (index_type == "hnsw" and args.num_vectors > 300_000):
                continue  # flat is the baseline, always built; the hnsw build alone takes minutes on 2 cores
            print(
                f"building {index_type} {build_kwargs or ''} on {args.num_vectors:,} vectors...",
                file=sys.stderr,
                flush=True,
            )
            index = GalleryIndex(DIM, index_type, **({"nlist": nlist} if index_type != "flat" else {}), **build_kwargs)
            start = time.perf_counter()
            if index.needs_training:
                index.train(sample[: args.pq_training_size] if index_type == "ivfpq" else sample)
            index.add(gallery)
            index.set_search_parameters(**search_kwargs)
            sizes = bytes_per_vector(index, Path(folder) / str(number))
            rows.append({"index": index, "build": time.perf_counter() - start, "sizes": sizes, "qps": []})
        for _ in range(args.rounds):  # interleaved: a slow moment of the shared machine hits every type alike
            for row in rows:
                qps, row["hits"] = queries_per_second(row["index"], queries)
                row["qps"].append(qps)
    flat = rows[0]
    flat_qps, flat_bytes = statistics.median(flat["qps"]), flat["sizes"][0]
    results = []
    for row in rows:
        index, (disk, mmap_ram) = row["index"], row["sizes"]
        qps = statistics.median(row["qps"])
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(row["hits"], flat["hits"])]))
        shown = {
            key: index.settings[key]
            for key in ("nlist", "nprobe", "pq_m", "refine", "refine_k_factor", "hnsw_m", "ef_search")
            if _shown(index.index_type, key)
        }
        name = f"{index.index_type} ({', '.join(f'{k}={v}' for k, v in shown.items()) or 'exact'})"
        print(
            f"| {kind} | {name} | {row['build']:.1f} | {recall:.3f} | {qps:,.0f} | {qps / flat_qps:.1f}x | "
            f"{disk:,.0f} ({disk / flat_bytes:.2f}) | {mmap_ram:,.0f} ({mmap_ram / flat_bytes:.2f}) | {disk:,.0f} |",
            flush=True,
        )
        fits = disk <= flat_bytes / 3 or mmap_ram <= flat_bytes / 8
        results.append(
            {
                "name": name,
                "index_type": index.index_type,
                "baseline": row is flat,
                "build_s": row["build"],
                "recall": recall,
                "qps": qps,
                "speedup": qps / flat_qps,
                "ram_bytes": disk,
                "mmap_ram_bytes": mmap_ram,
                "disk_bytes": disk,
                "passed": index.index_type != "flat" and recall >= 0.95 and qps >= 10 * flat_qps and fits,
            }
        )
    passed = [result["name"] for result in results if result["passed"]]
    if kind == "clustered":
        print(
            f"\nGoal (clustered, {args.num_vectors:,} x {DIM}: recall@10 >= 0.95 at >= 10x flat queries/s, RAM <= 1/3 "
            f"of flat or <= 1/8 with mmap): {'PASS by ' + '; '.join(passed) if passed else 'FAIL'}\n",
            flush=True,
        )
    return results


def _shown(index_type: str, key: str) -> bool:
    if index_type in ("ivf", "ivfpq", "ivfpq_refine"):
        return (
            key in ("nlist", "nprobe")
            or (key == "pq_m" and index_type == "ivfpq")
            or (key in ("refine", "refine_k_factor") and index_type == "ivfpq_refine")
        )
    return index_type == "hnsw" and key in ("hnsw_m", "ef_search")


def measure_mmap(args) -> list[dict]:
    """Builds flat and ivfpq_refine indexes of `args.mmap_vectors` vectors and loads each in a fresh process; prints
    one row per index type and load and returns them (loaded in memory: the baseline of its type)."""
    folder = Path(tempfile.mkdtemp(prefix="bench_index_mmap_"))
    rows = []
    try:
        queries = next(clustered_chunks(args.mmap_queries, seed=3))
        np.save(folder / "queries.npy", queries)
        for index_type in ("flat", "ivfpq_refine"):
            nlist = int(4 * np.sqrt(args.mmap_vectors))
            index = GalleryIndex(DIM, index_type, **({"nlist": nlist} if index_type != "flat" else {}))
            for number, chunk in enumerate(clustered_chunks(args.mmap_vectors, seed=2)):
                if number == 0 and index.needs_training:
                    index.train(chunk[: 39 * nlist])
                index.add(chunk)
            index.save(folder / index_type)
            size_mb = (folder / index_type / "index.faiss").stat().st_size / 2**20
            del index
            results = {}
            for mmap in (False, True):
                output = subprocess.run(
                    [sys.executable, __file__, "--_load_and_search", str(folder / index_type)]
                    + (["--_mmap"] if mmap else []),
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                results[mmap] = json.loads(output.strip().splitlines()[-1])
            for mmap, result in results.items():
                print(
                    f"| {index_type} | {args.mmap_vectors:,} | {size_mb:,.0f} | {'mmap' if mmap else 'in memory'} | "
                    f"{result['load_s']:.1f} | {result['rss_anon_mb']:+,.0f} | {result['qps']:,.0f} | "
                    f"{result['qps'] / results[False]['qps']:.2f}x |",
                    flush=True,
                )
                rows.append(
                    {
                        "index_type": index_type,
                        "vectors": args.mmap_vectors,
                        "queries": args.mmap_queries,
                        "index_mb": size_mb,
                        "load": "mmap" if mmap else "in memory",
                        "baseline": not mmap,
                        "load_s": result["load_s"],
                        "rss_anon_added_mb": result["rss_anon_mb"],
                        "qps": result["qps"],
                        "vs_in_memory": result["qps"] / results[False]["qps"],
                    }
                )
            shutil.rmtree(folder / index_type)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def load_and_search(folder: str, mmap: bool) -> None:
    """Child process of `measure_mmap`: prints JSON with the RssAnon the load added (MB) and queries/s."""
    queries = np.load(Path(folder).parent / "queries.npy")
    before = rss_anon_mb()
    start = time.perf_counter()
    index = GalleryIndex.load(folder, mmap=mmap)
    load_s = time.perf_counter() - start
    index.search(queries[:10], k=10)  # first pages in
    start = time.perf_counter()
    index.search(queries, k=10)
    qps = len(queries) / (time.perf_counter() - start)
    print(json.dumps({"rss_anon_mb": rss_anon_mb() - before, "qps": qps, "load_s": load_s}))


def rss_anon_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no RssAnon in /proc/self/status (Linux only)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_vectors", "--size", type=int, default=200_000, help="gallery size of the table")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="timed searches per index, interleaved (median shown)")
    parser.add_argument("--uniform", action="store_true", help="also run every type on a uniform gallery")
    parser.add_argument("--pq_training_size", type=int, default=10_000, help="ivfpq trains slowly: a smaller sample")
    parser.add_argument(
        "--mmap_vectors",
        "--mmap-vectors",
        type=int,
        default=1_000_000,
        help="gallery size of the mmap measurement (0 skips it)",
    )
    parser.add_argument("--mmap_queries", type=int, default=200, help="queries of the mmap measurement")
    parser.add_argument(
        "--types",
        nargs="+",
        default=list(INDEX_TYPES),
        choices=INDEX_TYPES,
        help="index types of the table (flat, the baseline, always runs)",
    )
    parser.add_argument("--threads", type=int, default=None, help="FAISS threads (default: the usable cores)")
    add_results_dir_argument(parser)
    parser.add_argument("--_load_and_search", help=argparse.SUPPRESS)
    parser.add_argument("--_mmap", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # More OpenMP threads than free cores make FAISS training crawl on a loaded machine (threads spin at barriers).
    faiss.omp_set_num_threads(args.threads or len(os.sched_getaffinity(0)))
    if args._load_and_search:
        load_and_search(args._load_and_search, args._mmap)
        return
    print_cpu_info()
    print(
        "| data | index | build (s) | recall@10 | queries/s | vs flat | RAM bytes/vector (vs flat) | RAM, mmap | disk |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for kind in ("clustered", "uniform") if args.uniform else ("clustered",):
        size = {"data": kind, "vectors": args.num_vectors, "queries": args.queries, "rounds": args.rounds}
        size["threads"] = faiss.omp_get_max_threads()
        rows += [{**size, **row} for row in compare_types(args, kind)]
    write_results("index_types", rows, args.results_dir)
    if args.mmap_vectors:
        print(
            "\n| index | vectors | index.faiss (MB) | load | load (s) | RssAnon added (MB) | queries/s | vs in memory |"
        )
        print("|---|---|---|---|---|---|---|---|")
        write_results("index_mmap", measure_mmap(args), args.results_dir)
        print_cpu_info()


if __name__ == "__main__":
    main()
