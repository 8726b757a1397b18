"""Shared helpers of the benchmark scripts: which CPU a table was measured on, a timing loop, and the results writer.

Every benchmark prints `print_cpu_info()` above its table, since CPU speed (and whether bf16 pays) depends on
the instruction set: on an AVX2-only CPU bf16 autocast was 6x slower than fp32, on an avx512_bf16 one ~3x faster.
Every benchmark also writes its table with `write_results` to `benchmarks/results/<name>.csv` (or the folder of
`--results_dir` / `$HF_LAREID_BENCH_RESULTS`), each row carrying the CPU, the library versions, the date and the git
commit, and one or more rows marked `baseline` (the reference measured in the same run).
`benchmarks/make_tables.py` renders those files into `docs/benchmarks.md`.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib.metadata
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "ENVIRONMENT_COLUMNS",
    "add_results_dir_argument",
    "cpu_info",
    "median_and_spread",
    "print_cpu_info",
    "run_environment",
    "time_throughput",
    "write_results",
]

_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_info() -> dict[str, Any]:
    """
    The CPU and torch setup a measurement ran on.

    Returns a dict: `model` (from /proc/cpuinfo, else `platform.processor()`), `cores` (usable CPUs),
    `torch_threads`, `load_average` (1 minute; other work on the machine makes timings noisy), one bool per flag in `avx2`, `avx512f`, `avx512_bf16`, `amx_bf16`, and `torch_avx512_bf16`
    (`torch.cpu._is_avx512_bf16_supported()`, what decides whether bf16 autocast pays).
    """
    import torch  # here, so that make_tables.py (no measuring) starts without it

    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("unknown", platform.processor()):
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:  # not Linux: flags unknown
        pass
    info: dict[str, Any] = {
        "model": model,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    info.update({flag: flag in flags for flag in _FLAGS})
    info["torch_avx512_bf16"] = bool(torch.cpu._is_avx512_bf16_supported())
    return info


def print_cpu_info() -> dict[str, Any]:
    """Prints `cpu_info()` as two lines above a benchmark table; returns the dict."""
    info = cpu_info()
    print(
        f"CPU: {info['model']} ({info['cores']} cores, torch {info['torch']}, {info['torch_threads']} threads, "
        f"load average {info['load_average']})"
    )
    print("flags: " + ", ".join(f"{k}={'yes' if info[k] else 'no'}" for k in (*_FLAGS, "torch_avx512_bf16")))
    return info


def time_throughput(fn: Callable[[], Any], items_per_call: int, repeats: int, warmup: int = 1) -> list[float]:
    """Calls `fn` `warmup` times, then `repeats` times; returns the items per second of every timed call."""
    for _ in range(warmup):
        fn()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        rates.append(items_per_call / (time.perf_counter() - start))
    return rates


def median_and_spread(rates: list[float]) -> tuple[float, float]:
    """`(median, (max - min) / 2)` of a list of rates."""
    return statistics.median(rates), (max(rates) - min(rates)) / 2


# ------------------------------------------------------------------------------------------------- results files
REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
RESULTS_ENV = "HF_LAREID_BENCH_RESULTS"  # overrides the default folder (the tests point it at a temporary one)
# Each CSV row starts with these, then the configuration and the measured figures of its table.
ENVIRONMENT_COLUMNS = (
    "date",
    "commit",
    "cpu",
    "cpu_flags",
    "cores",
    "load_average",
    "python",
    "torch",
    "transformers",
    "onnxruntime",
    "faiss",
    "command",
)
_DISTRIBUTIONS = {"torch": ("torch",), "transformers": ("transformers",), "onnxruntime": ("onnxruntime",)}
_DISTRIBUTIONS["faiss"] = ("faiss-cpu", "faiss", "faiss-gpu")


def add_results_dir_argument(parser: argparse.ArgumentParser) -> None:
    """Adds `--results_dir` (default: `$HF_LAREID_BENCH_RESULTS`, else `benchmarks/results`)."""
    parser.add_argument(
        "--results_dir",
        type=Path,
        default=None,
        help=f"folder of the CSV results (default: ${RESULTS_ENV}, else benchmarks/results)",
    )


def _version(names: Sequence[str]) -> str:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def git_commit(root: Path = REPO_ROOT) -> str:
    """The short commit of `root`'s checkout, with `-dirty` when tracked or untracked files differ from it (the
    results folder aside: writing results does not dirty the next run); "unknown" outside a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", ".", ":(exclude)benchmarks/results"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if changes else commit


def run_environment(command: Sequence[str] | None = None) -> dict[str, Any]:
    """
    The `ENVIRONMENT_COLUMNS` of one run: UTC date (seconds), git commit, CPU model, the CPU flags that matter
    (space-separated, those present of avx2, avx512f, avx512_bf16, amx_bf16), usable cores, 1-minute load average,
    Python / torch / transformers / onnxruntime / faiss versions, and the command line (`command`, default
    `sys.argv`).
    """
    info = cpu_info()
    argv = list(sys.argv if command is None else command)
    script = Path(argv[0]) if argv else Path("python")
    if script.is_absolute() and script.is_relative_to(REPO_ROOT):
        script = script.relative_to(REPO_ROOT)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": git_commit(),
        "cpu": info["model"],
        "cpu_flags": " ".join(flag for flag in _FLAGS if info[flag]),
        "cores": info["cores"],
        "load_average": info["load_average"],
        "python": platform.python_version(),
        **{column: _version(names) for column, names in _DISTRIBUTIONS.items()},
        "command": shlex.join(["python", str(script), *argv[1:]]),
    }


def _cell(value: Any) -> Any:
    """Floats to 6 significant digits (timings carry no more; "2.0" stays a float), None to an empty cell."""
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.6g}"
        return f"{text}.0" if text.lstrip("-").isdigit() else text
    return value


def write_results(
    name: str,
    rows: Sequence[dict[str, Any]],
    results_dir: Path | None = None,
    command: Sequence[str] | None = None,
) -> Path:
    """
    Appends the rows of one run to `<results_dir>/<name>.csv` and returns its path.

    Each row is a dict of the configuration and the measured figures, with a bool `baseline` that marks the reference
    rows measured in the same run (at least one per call). Every written row starts with the `ENVIRONMENT_COLUMNS` of
    this run. Earlier runs stay in the file; when the columns changed, the file is rewritten with the union of the
    columns (earlier rows get empty cells). A file that is not such a table is refused (`ValueError`), never replaced.
    `results_dir` defaults to `$HF_LAREID_BENCH_RESULTS`, else `benchmarks/results`.
    """
    if not rows:
        raise ValueError(f"{name}: no rows to write")
    if any(not isinstance(row.get("baseline"), bool) for row in rows) or not any(row["baseline"] for row in rows):
        raise ValueError(f"{name}: every row needs a bool 'baseline' and at least one baseline row (same run)")
    folder = Path(results_dir or os.environ.get(RESULTS_ENV) or RESULTS_DIR)
    path = folder / f"{name}.csv"
    environment = run_environment(command)
    new_rows = [{**environment, **{key: _cell(value) for key, value in row.items()}} for row in rows]
    columns, header = list(ENVIRONMENT_COLUMNS), []
    earlier: list[dict[str, str]] = []
    if path.exists():
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            if tuple(header[: len(ENVIRONMENT_COLUMNS)]) != ENVIRONMENT_COLUMNS:
                raise ValueError(
                    f"{path} is not a benchmark results table (its header does not start with "
                    f"{', '.join(ENVIRONMENT_COLUMNS[:3])}, ...): move it away or pass another --results_dir"
                )
            earlier = list(reader)
        columns = list(header)
    for row in new_rows:
        columns += [key for key in row if key not in columns]
    folder.mkdir(parents=True, exist_ok=True)
    rewrite = columns != header
    with open(path, "w" if rewrite else "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        if rewrite:
            writer.writeheader()
            writer.writerows(earlier)
        writer.writerows(new_rows)
    print(f"results: {len(new_rows)} rows appended to {path}")
    return path
