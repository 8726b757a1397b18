"""Embedding throughput: `LATransformerForReID.embed` vs the bare `ViTModel` forward it wraps.

Same weights, config and batch, measured in one run with the two interleaved, in fp32 and (where the CPU has
AVX-512 bf16, or with --force-bf16) under bf16 autocast. Prints img/s as median +- half-range over the repeats
and the ratio to the ViTModel. The goal (head overhead under 3% in fp32) is judged as the issue defines it: the
`embed` throughput against the bare `ViTModel` forward, as the median of the per-repeat paired ratios (robust to
drift, not to noise from other work on the machine). The head alone (row pooling + normalisation on the cached
last hidden state) is timed too and shown as extra information: its cost as a share of a backbone forward.

The default setup is `tiny` (hub_configs), the one setup all benchmarks use; the others stay selectable.

    python benchmarks/bench_model.py                  # the tiny setup, batch 8, random weights
    python benchmarks/bench_model.py --batch-size 64 --repeats 10
    python benchmarks/bench_model.py --setup baseline # ViT-B/16 at 224
"""

from __future__ import annotations

import argparse
import contextlib
import statistics

import torch
from _common import add_results_dir_argument, median_and_spread, print_cpu_info, time_throughput, write_results

from hf_lareid import LATransformerForReID
from hf_lareid.hub.setups import list_setups, load_setup
from hf_lareid.modeling_lareid import embed_parts

OVERHEAD_GOAL = 0.03
BACKBONE, EMBED, HEAD = "ViTModel forward", "LATransformer embed", "head only (cached)"


def measure(
    model: LATransformerForReID, pixel_values: torch.Tensor, repeats: int, bf16: bool
) -> dict[str, list[float]]:
    """img/s of `model.vit`, `model.embed` and the head alone, interleaved repeat by repeat so drift hits all alike."""
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        last_hidden_state = model.vit(pixel_values).last_hidden_state

        def head() -> torch.Tensor:
            gelt, local = model.row_pooling(last_hidden_state)
            bottleneck = model._bottleneck_features(gelt) if model.config.embedding == "bottleneck" else None
            return embed_parts(gelt, local, model.config.embedding, bottleneck)

        runs = {BACKBONE: lambda: model.vit(pixel_values), EMBED: lambda: model.embed(pixel_values), HEAD: head}
        rates: dict[str, list[float]] = {name: [] for name in runs}
        for repeat in range(repeats):
            order = list(runs) if repeat % 2 == 0 else list(reversed(runs))
            for name in order:
                rates[name] += time_throughput(runs[name], len(pixel_values), repeats=1, warmup=int(repeat == 0))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--setup",
        default="tiny",
        choices=list_setups(),
        help="model config from hf_lareid.hub.setups (default: tiny, the benchmarks' setup; baseline is ViT-B/16 224)",
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    bf16_group = parser.add_mutually_exclusive_group()
    bf16_group.add_argument(
        "--force-bf16", action="store_true", help="measure bf16 autocast even where the CPU lacks AVX-512 bf16"
    )
    bf16_group.add_argument("--no-bf16", action="store_true", help="measure fp32 only")
    add_results_dir_argument(parser)
    args = parser.parse_args()

    info = print_cpu_info()
    torch.manual_seed(0)
    config, _, _ = load_setup(args.setup)
    model = LATransformerForReID(config).eval()
    pixel_values = torch.randn(args.batch_size, 3, *config.image_size)
    print(
        f"ran: setup {args.setup!r}{' (default)' if args.setup == parser.get_default('setup') else ''}, "
        f"batch {args.batch_size}, {args.repeats} repeats, random weights; "
        f"{config.backbone_config.num_hidden_layers} blocks, width {config.hidden_size}, input {config.image_size}, "
        f"{config.num_parts} parts, embedding {config.embedding!r}\n"
    )

    precisions = ["fp32"]
    if not args.no_bf16 and (info["torch_avx512_bf16"] or args.force_bf16):
        precisions.append("bf16 autocast")
    elif not args.no_bf16:
        print(
            "bf16 skipped: no AVX-512 bf16 on this CPU, where bf16 autocast is slower than fp32 (--force-bf16 to measure)\n"
        )

    header = f"| {'precision':<13} | {'model':<20} | {'img/s (median +- half-range)':>28} | {'vs ViTModel':>11} |"
    print(header)
    print("|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|")
    overheads, rows = {}, []
    for precision in precisions:
        rates = measure(model, pixel_values, args.repeats, bf16=precision != "fp32")
        baseline, _ = median_and_spread(rates[BACKBONE])
        for name in (BACKBONE, EMBED, HEAD):
            median, spread = median_and_spread(rates[name])
            print(
                f"| {precision:<13} | {name:<20} | {f'{median:.2f} +- {spread:.2f}':>28} | {median / baseline:>10.3f}x |"
            )
            rows.append(
                {
                    "setup": args.setup,
                    "batch": args.batch_size,
                    "repeats": args.repeats,
                    "precision": precision,
                    "model": name,
                    "baseline": name == BACKBONE,
                    "img_s": median,
                    "img_s_half_range": spread,
                    "vs_vitmodel": median / baseline,
                }
            )
        # The goal's measure: the embed throughput against the ViTModel's, paired repeat by repeat.
        paired, paired_spread = median_and_spread([1 - e / b for e, b in zip(rates[EMBED], rates[BACKBONE])])
        head_share = baseline / statistics.median(rates[HEAD])
        overheads[precision] = (paired, paired_spread, head_share)
    print()
    for precision, (paired, paired_spread, head_share) in overheads.items():
        print(
            f"head overhead, {precision}: {100 * paired:+.1f}% +- {100 * paired_spread:.1f}% (embed vs ViTModel img/s, "
            f"median of paired repeats); the head alone costs {100 * head_share:.3f}% of a backbone forward"
        )
    paired, paired_spread, _ = overheads["fp32"]
    verdict = "met" if paired < OVERHEAD_GOAL else "NOT met"
    if paired_spread > OVERHEAD_GOAL:
        verdict += (
            f" (noisy: the paired repeats spread +-{100 * paired_spread:.1f}%, more than the goal; "
            f"load average {info['load_average']}: rerun on an idle machine, with more repeats or a larger batch)"
        )
    print(
        f"goal: head overhead < {100 * OVERHEAD_GOAL:.0f}% in fp32 (embed vs ViTModel throughput, median of paired "
        f"repeats; setup {args.setup!r}, batch {args.batch_size}): {verdict}"
    )
    for row in rows:  # the goal's paired measure, on the embed rows
        if row["model"] == EMBED:
            row["paired_overhead"], row["paired_overhead_half_range"], _ = overheads[row["precision"]]
    write_results("model_embed", rows, args.results_dir)


if __name__ == "__main__":
    main()
