"""What the safe save costs: `save_pretrained` staged with fsync and a SHA-256, and `verify_model_weights`.

The claim (issue "Reliability"): saving a ViT-B/16-sized LA-Transformer into a folder that already holds a model
costs well under a second more than transformers' plain `save_pretrained` (which neither stages, fsyncs nor hashes),
and checking the weights before a load costs one read of the file. The baseline is the plain save in the same run.

Run: ``python benchmarks/bench_storage.py [--repeats 3]``
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from _common import add_results_dir_argument, print_cpu_info, write_results  # benchmarks/_common.py
from transformers import PreTrainedModel
from transformers.utils import logging as hf_logging

from hf_lareid import LATransformerConfig, LATransformerForReID, verify_model_weights


def median_seconds(job, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        job()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    add_results_dir_argument(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    hf_logging.disable_progress_bar()
    config = LATransformerConfig(
        backbone_config={
            "model_type": "vit",
            "image_size": [256, 128],
            "patch_size": 16,
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
        },
        num_labels=751,
    )
    model = LATransformerForReID(config)
    with tempfile.TemporaryDirectory() as tmp:
        plain_dir, safe_dir = Path(tmp) / "plain", Path(tmp) / "safe"
        PreTrainedModel.save_pretrained(model, plain_dir)  # both folders already hold a model
        model.save_pretrained(safe_dir)
        plain_s = median_seconds(lambda: PreTrainedModel.save_pretrained(model, plain_dir), args.repeats)
        safe_s = median_seconds(lambda: model.save_pretrained(safe_dir), args.repeats)
        verify_s = median_seconds(lambda: verify_model_weights(safe_dir), args.repeats)
        size_mb = (safe_dir / "model.safetensors").stat().st_size / 1e6

    print_cpu_info()
    print(f"ViT-B/16 LA-Transformer at 256x128, model.safetensors {size_mb:.0f} MB; median of {args.repeats}")
    print()
    print("| step | time (s) | note |")
    print("|---|---:|---|")
    print(f"| plain transformers save_pretrained (baseline) | {plain_s:.2f} | overwrites in place |")
    print(f"| hf_lareid save_pretrained | {safe_s:.2f} | staged, fsynced, SHA-256 recorded |")
    print(f"| verify_model_weights | {verify_s:.2f} | one read of the weights |")
    print(f"| extra time of the safe save | {safe_s - plain_s:.2f} s ({safe_s / plain_s:.1f}x) | claim: < 1 s |")
    steps = [
        ("plain transformers save_pretrained", plain_s, True),
        ("hf_lareid save_pretrained (staged, fsynced, SHA-256)", safe_s, False),
        ("verify_model_weights", verify_s, False),
    ]
    rows = [
        {
            "model": "ViT-B/16 256x128",
            "weights_mb": size_mb,
            "repeats": args.repeats,
            "step": step,
            "baseline": baseline,
            "seconds": seconds,
            "vs_baseline": seconds / plain_s,
        }
        for step, seconds, baseline in steps
    ]
    write_results("storage", rows, args.results_dir)


if __name__ == "__main__":
    main()
