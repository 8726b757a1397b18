"""Shared helpers of the benchmark scripts: which CPU a table was measured on, and a timing loop.

Every benchmark prints `print_cpu_info()` above its table, since CPU speed (and whether bf16 pays) depends on
the instruction set: on an AVX2-only CPU bf16 autocast was 6x slower than fp32, on an avx512_bf16 one ~3x faster.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["cpu_info", "median_and_spread", "print_cpu_info", "time_throughput"]

_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_info() -> dict[str, Any]:
    """
    The CPU and torch setup a measurement ran on.

    Returns a dict: `model` (from /proc/cpuinfo, else `platform.processor()`), `cores` (usable CPUs),
    `torch_threads`, `load_average` (1 minute; other work on the machine makes timings noisy), one bool per flag in `avx2`, `avx512f`, `avx512_bf16`, `amx_bf16`, and `torch_avx512_bf16`
    (`torch.cpu._is_avx512_bf16_supported()`, what decides whether bf16 autocast pays).
    """
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
