"""Embedding throughput per runtime: PyTorch eager `model.embed`, ONNX Runtime (CPU) and OpenVINO (CPU).

For each setup (random weights from hub_configs, no download) and batch size, every runtime runs on the same
preprocessed batch, interleaved repeat by repeat (the order alternates) so drift and other work on the machine hit
all alike. The ONNX graph is written once per setup by `hf_lareid.embedding.onnx_export.export_onnx` with the opset and
exporter of the package's cached graph (`hf_lareid.embedding.backends.graph_cache.ONNX_OPSET`, `ONNX_EXPORTER`) into a temporary folder;
ORT and OpenVINO run it in the package's own sessions (`hf_lareid.embedding.backends.OnnxRuntimeEmbedder` /
`OpenVINOEmbedder`, their thread and spinning settings) with `threads` = the usable cores.

Preprocessing (the image processor on PIL images, the same work whatever the runtime) is timed separately on the
same images and added to every runtime's time: the `img/s` column is end to end, `model img/s` the runtime alone.
The `default path` row times `hf_lareid.ReIDEncoder.encode` end to end on the PIL images, with the encoder built
once beforehand as an application keeps it (what the package does without options: `runtime="auto"`; each call
checks that the model's weights and forward config are unchanged before reusing the loaded graph).

Columns: img/s (median over repeats), ratio to PyTorch eager, max abs diff of the embeddings vs eager, and the
attained GFLOP/s of the model alone (FLOPs of one forward counted by `torch.utils.flop_counter`) next to a plain
fp32 `torch.mm` of the model's width `(batch * tokens, hidden) @ (hidden, intermediate)` timed in the same run.
The goal, per setup and batch size: the default path reaches >= 0.95x of the fastest runtime.

    python benchmarks/bench_runtimes.py                          # tiny and baseline, batch 1, 8, 64
    python benchmarks/bench_runtimes.py --setups tiny --batch_sizes 1 64 --repeats 7
    python benchmarks/bench_runtimes.py --quick                  # tiny, batch 1 and 8, 2 repeats
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import add_results_dir_argument, print_cpu_info, write_results
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from hf_lareid import LATransformerForReID, ReIDEncoder
from hf_lareid.embedding.backends import Embedder, OnnxRuntimeEmbedder, OpenVINOEmbedder
from hf_lareid.embedding.backends.graph_cache import ONNX_EXPORTER, ONNX_OPSET
from hf_lareid.embedding.onnx_export import export_onnx
from hf_lareid.hub.setups import load_setup
from hf_lareid.utils.extras import MissingExtraError

GOAL = 0.95
EAGER, ORT, OPENVINO, DEFAULT = "torch eager", "onnxruntime", "openvino", "default path"
DEFAULT_LABEL = 'ReIDEncoder(runtime="auto").encode'  # what the package runs without options


def make_images(batch_size: int, image_size: tuple[int, int], seed: int = 0) -> list[Image.Image]:
    """`batch_size` random RGB PIL images, a little larger than the model input (so the processor resizes)."""
    height, width = image_size
    arrays = np.random.default_rng(seed).integers(
        0, 256, (batch_size, height + height // 4, width + width // 4, 3), dtype=np.uint8
    )
    return [Image.fromarray(array) for array in arrays]


def package_runner(
    embedder_class: type[Embedder], onnx_path: str, threads: int
) -> Callable[[np.ndarray], np.ndarray] | None:
    """`pixels (B, 3, H, W) float32 -> embeddings (B, D)` with the package's own session of that runtime (its thread
    and precision settings, OpenVINO imported with its telemetry off), or None when the runtime is not installed."""
    try:
        return embedder_class(onnx_path, threads=threads)._run
    except MissingExtraError:
        return None


def forward_flops(model: LATransformerForReID, pixel_values: torch.Tensor) -> int:
    """FLOPs of one `model.embed` forward on `pixel_values` (matmuls, convolutions, attention)."""
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model.embed(pixel_values)
    return counter.get_total_flops()


def matmul_gflops(config: Any, batch_size: int, repeats: int) -> float:
    """GFLOP/s of a plain fp32 `(batch * tokens, hidden) @ (hidden, intermediate)` torch.mm (median of repeats)."""
    backbone = config.backbone_config
    tokens = (config.image_size[0] // backbone.patch_size) * (config.image_size[1] // backbone.patch_size) + 1
    a = torch.randn(batch_size * tokens, backbone.hidden_size)
    b = torch.randn(backbone.hidden_size, backbone.intermediate_size)
    flops = 2 * a.shape[0] * a.shape[1] * b.shape[1]
    inner = max(1, int(2e9 // flops))  # ~2 GFLOP per timed call, so small shapes are not all call overhead
    torch.mm(a, b)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            torch.mm(a, b)
        rates.append(inner * flops / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


def measure_setup(
    setup: str, batch_sizes: list[int], repeats: int, threads: int, workdir: Path
) -> list[dict[str, Any]]:
    """One row per (batch size, runtime): img/s end to end and model alone, ratio, max abs diff, GFLOP/s."""
    torch.manual_seed(0)
    config, image_processor, _ = load_setup(setup)
    model = LATransformerForReID(config).eval()
    onnx_path = str(workdir / f"{setup}.onnx")
    # The graph the package's runtimes run (`hf_lareid.embedding.backends.cached_onnx`): its opset and exporter.
    export_onnx(
        model, onnx_path, opset=ONNX_OPSET, exporter=ONNX_EXPORTER, check=False, image_processor=image_processor
    )
    runners: dict[str, Callable[[np.ndarray], np.ndarray]] = {}

    def eager(pixels: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model.embed(torch.from_numpy(pixels)).float().numpy()

    runners[EAGER] = eager
    for name, embedder_class in ((ORT, OnnxRuntimeEmbedder), (OPENVINO, OpenVINOEmbedder)):
        runner = package_runner(embedder_class, onnx_path, threads)
        if runner is None:
            print(f"{name}: not installed, skipped")
        else:
            runners[name] = runner
    return [
        row
        for batch_size in batch_sizes
        for row in measure_batch(setup, model, image_processor, runners, batch_size, repeats)
    ]


def measure_batch(
    setup: str,
    model: LATransformerForReID,
    image_processor: Any,
    runners: dict[str, Callable[[np.ndarray], np.ndarray]],
    batch_size: int,
    repeats: int,
) -> list[dict[str, Any]]:
    """The rows of one batch size: every runner, then the default path, interleaved with the preprocessing."""
    config = model.config
    flops_per_image = forward_flops(model, torch.zeros(1, 3, *config.image_size))
    images = make_images(batch_size, config.image_size, seed=batch_size)

    def preprocess() -> np.ndarray:
        return image_processor(images, return_tensors="np")["pixel_values"].astype(np.float32)

    encoder = ReIDEncoder(model, image_processor, batch_size=batch_size)

    def default_path() -> np.ndarray:
        return encoder.encode(images).embeddings

    pixels = preprocess()
    outputs = {name: run(pixels) for name, run in runners.items()}  # warm-up, and the outputs compared
    outputs[DEFAULT] = default_path()
    # The default path is compared with eager PyTorch at the precision it resolved to (bf16 where the CPU pays).
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=encoder.bf16):
        default_reference = runners[EAGER](pixels)
    seconds: dict[str, list[float]] = {name: [] for name in ["preprocess", *runners, DEFAULT]}
    calls = {
        **{name: (lambda run=run: run(pixels)) for name, run in runners.items()},
        "preprocess": preprocess,
        DEFAULT: default_path,
    }
    for repeat in range(repeats):
        order = list(seconds) if repeat % 2 == 0 else list(reversed(seconds))
        for name in order:
            start = time.perf_counter()
            calls[name]()
            seconds[name].append(time.perf_counter() - start)
    matmul = matmul_gflops(config, batch_size, repeats=max(3, repeats))
    preprocess_s = statistics.median(seconds["preprocess"])
    eager_rate = batch_size / (statistics.median(seconds[EAGER]) + preprocess_s)
    rows = []
    for name in [*runners, DEFAULT]:
        model_s = statistics.median(seconds[name])
        end_to_end = model_s if name == DEFAULT else model_s + preprocess_s
        gflops = None if name == DEFAULT else flops_per_image * batch_size / model_s / 1e9
        rows.append(
            {
                "setup": setup,
                "batch": batch_size,
                "runtime": DEFAULT_LABEL if name == DEFAULT else name,
                "key": name,
                "baseline": name == EAGER,
                "img_s": batch_size / end_to_end,
                "model_img_s": None if name == DEFAULT else batch_size / model_s,
                "vs_eager": batch_size / end_to_end / eager_rate,
                "precision": "bf16" if name == DEFAULT and encoder.bf16 else "fp32",
                "max_abs_diff": float(
                    np.abs(outputs[name] - (default_reference if name == DEFAULT else outputs[EAGER])).max()
                ),
                "gflops": gflops,
                "matmul_gflops": matmul,
                "preprocess_img_s": batch_size / preprocess_s,
            }
        )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The markdown table, one row per setup, batch size and runtime."""
    header = (
        "| setup | batch | runtime | precision | img/s | model img/s | vs eager | max abs diff | GFLOP/s | vs matmul |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        gflops = "-" if row["gflops"] is None else f"{row['gflops']:.1f}"
        share = "-" if row["gflops"] is None else f"{row['gflops'] / row['matmul_gflops']:.2f}"
        model_rate = "-" if row["model_img_s"] is None else f"{row['model_img_s']:.1f}"
        lines.append(
            f"| {row['setup']} | {row['batch']} | {row['runtime']} | {row['precision']} | {row['img_s']:.1f} | {model_rate} | "
            f"{row['vs_eager']:.2f}x | {row['max_abs_diff']:.1e} | {gflops} | {share} |"
        )
    return "\n".join(lines)


def judge(rows: list[dict[str, Any]]) -> list[str]:
    """One verdict line per (setup, batch): the default path's img/s against the fastest runtime's."""
    verdicts = []
    for key in dict.fromkeys((row["setup"], row["batch"]) for row in rows):
        group = [row for row in rows if (row["setup"], row["batch"]) == key]
        fastest = max((row for row in group if row["key"] != DEFAULT), key=lambda row: row["img_s"])
        default = next(row for row in group if row["key"] == DEFAULT)
        ratio = default["img_s"] / fastest["img_s"]
        verdicts.append(
            f"goal {key[0]} batch {key[1]}: default path {ratio:.2f}x of the fastest ({fastest['runtime']}, "
            f"{fastest['img_s']:.1f} img/s): {'met' if ratio >= GOAL else 'NOT met'} (>= {GOAL}x)"
        )
    return verdicts


def measure_fresh_weights(
    setup: str, patch_size: int | None, num_images: int, batch_size: int = 128
) -> list[dict[str, Any]]:
    """
    The Trainer's case: embed `num_images` with weights never seen before. Eager torch against an export of the
    current weights (`make_embedder(..., cache=False)`: TorchScript exporter, temporary file) plus the ONNX runtime,
    export included; `break_even` is the number of images from which the export pays.
    """
    from hf_lareid.embedding.backends import TorchEmbedder, make_embedder, runtime_available

    torch.manual_seed(0)
    config, _, _ = load_setup(setup)
    if patch_size is not None:
        config.backbone_config.patch_size = patch_size
    model = LATransformerForReID(config).eval()
    pixels = torch.randn(num_images, 3, *config.image_size)

    def embed_all(embedder: Any) -> None:
        for start in range(0, num_images, batch_size):
            embedder.embed(pixels[start : start + batch_size])

    eager = TorchEmbedder(model)
    embed_all(eager)  # warm-up
    start = time.perf_counter()
    embed_all(eager)
    eager_s = time.perf_counter() - start
    label = setup if patch_size is None else f"{setup}, patch {patch_size}"
    rows = [
        {
            "geometry": label,
            "images": num_images,
            "runtime": EAGER,
            "baseline": True,
            "export_s": 0.0,
            "total_s": eager_s,
            "break_even": None,
        }
    ]
    for runtime in (ORT, OPENVINO):
        if not runtime_available(runtime):
            continue
        start = time.perf_counter()
        embedder = make_embedder(model, runtime, bf16=False, cache=False)
        export_s = time.perf_counter() - start
        embed_all(embedder)
        total_s = time.perf_counter() - start
        saved_per_image = (eager_s - (total_s - export_s)) / num_images
        rows.append(
            {
                "geometry": label,
                "images": num_images,
                "runtime": runtime,
                "baseline": False,
                "export_s": export_s,
                "total_s": total_s,
                "break_even": export_s / saved_per_image if saved_per_image > 0 else float("inf"),
            }
        )
    return rows


def format_fresh_weights(rows: list[dict[str, Any]]) -> str:
    """The markdown table of `measure_fresh_weights` rows, the ratio to eager torch per geometry."""
    lines = [
        "| geometry | images | runtime | export + load s | total s | vs eager | pays from (images) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        eager = next(
            r for r in rows if (r["geometry"], r["images"], r["runtime"]) == (row["geometry"], row["images"], EAGER)
        )
        pays = "-" if row["break_even"] is None else f"{row['break_even']:.0f}"
        lines.append(
            f"| {row['geometry']} | {row['images']} | {row['runtime']} | {row['export_s']:.1f} | {row['total_s']:.1f} | "
            f"{eager['total_s'] / row['total_s']:.2f}x | {pays} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setups", nargs="+", default=["tiny", "baseline"])
    parser.add_argument("--batch_sizes", "--batch-sizes", nargs="+", type=int, default=[1, 8, 64])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny only, batch 1 and 8, 2 repeats")
    parser.add_argument(
        "--fresh_weights",
        nargs="*",
        type=int,
        default=None,
        metavar="IMAGES",
        help="only the Trainer's case (new weights every evaluation): export + ONNX runtime vs eager torch for these "
        "numbers of images (default 400 1600), tiny and the demo's tiny at patch 16",
    )
    add_results_dir_argument(parser)
    args = parser.parse_args(argv)
    command = None if argv is None else [__file__, *argv]
    if args.fresh_weights is not None:
        print_cpu_info()
        rows = [
            row
            for patch_size in (None, 16)
            for images in (args.fresh_weights or [400, 1600])
            for row in measure_fresh_weights("tiny", patch_size, images)
        ]
        print(format_fresh_weights(rows))
        write_results("runtimes_fresh_weights", rows, args.results_dir, command)
        return rows
    if args.quick:
        args.setups, args.batch_sizes, args.repeats = ["tiny"], [1, 8], 2
    info = print_cpu_info()
    threads = info["cores"] or os.cpu_count() or 1
    print(
        f"ran: setups {args.setups}, batch sizes {args.batch_sizes}, {args.repeats} repeats, random weights, "
        f"ORT/OpenVINO with {threads} threads; preprocessing timed separately and added to every runtime's img/s; "
        f"default path: {DEFAULT_LABEL}\n"
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_runtimes_") as workdir:
        for setup in args.setups:
            rows += measure_setup(setup, args.batch_sizes, args.repeats, threads, Path(workdir))
    print(format_table(rows))
    preprocess = {(row["setup"], row["batch"]): row["preprocess_img_s"] for row in rows}
    print(
        "\npreprocessing alone (img/s): "
        + ", ".join(f"{s} batch {b}: {rate:.0f}" for (s, b), rate in preprocess.items())
    )
    print("\n".join(judge(rows)))
    write_results(
        "runtimes",
        [{"repeats": args.repeats, "threads": threads, **{k: v for k, v in row.items() if k != "key"}} for row in rows],
        args.results_dir,
        command,
    )
    return rows


if __name__ == "__main__":
    main()
