"""Training benchmarks: blockwise fine-tuning speed, the from-scratch geometry and input pipeline, and what the `tiny`
setup learns from scratch.

1. Training steps/s of the `tiny` setup with only the top encoder block trainable (epoch 0 of blockwise fine-tuning)
   next to the fully unfrozen model (the baseline), same batch, same process. Frozen blocks record no autograd
   graph, so their backward costs nothing (the issue's goal: >= 2x).
2. `--geometry`: seconds per training step (batch 64, fp32) of the from-scratch candidates at 128x64 (patch 16:
   8 rows, 33 tokens; patch 8x16: 16 rows, 65 tokens; patch 8: 16 rows, 129 tokens), interleaved in one process,
   as ratios to patch 16; and the input pipeline's seconds per batch of 64: decoding every step through
   `set_transform` next to images decoded once into memory (`--decode_once`), with the `tiny` augmentations.
3. Rank-1 / mAP of the `tiny` setup trained from scratch on a generated set for a fixed number of steps, next to the
   same model untrained (evaluated before the first step of the same run), through the train entry point.

    python benchmarks/bench_train.py                 # both parts
    python benchmarks/bench_train.py --steps 300 --speed_steps 10
    python benchmarks/bench_train.py --geometry --skip_learning
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import torch
from _common import add_results_dir_argument, print_cpu_info, write_results  # benchmarks/_common.py

from hf_lareid import LATransformerForReID
from hf_lareid.hub.setups import load_setup
from hf_lareid.scripts.train import main as train_main
from hf_lareid.training import BlockwiseUnfreezeCallback


def steps_per_second(model: LATransformerForReID, epoch: int, batch_size: int, steps: int, bf16: bool) -> float:
    """Optimizer steps/s with the trainable blocks of blockwise epoch `epoch` (a huge epoch: all blocks)."""
    BlockwiseUnfreezeCallback(t=1, lr_decay=1.0).apply(epoch, model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)  # every parameter, as LATransformerTrainer does
    height, width = model.config.image_size
    generator = torch.Generator().manual_seed(0)
    pixel_values = torch.randn(batch_size, 3, height, width, generator=generator)
    labels = torch.randint(0, model.config.num_labels, (batch_size,), generator=generator)
    model.train()

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(pixel_values, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(2):  # warm-up
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def speed_table(batch_size: int, steps: int, bf16: bool) -> list[dict]:
    """Prints the blockwise speed table; returns its rows (fully unfrozen: the baseline)."""
    config, _, _ = load_setup("tiny")
    config.num_labels = 50
    torch.manual_seed(0)
    model = LATransformerForReID(config)
    num_blocks = len(model.vit.layers)
    # Interleave the two phases and keep each one's best of 3 rounds: other processes on the machine add noise.
    top, full = [], []
    for _ in range(3):
        top.append(steps_per_second(model, 0, batch_size, steps, bf16))
        full.append(steps_per_second(model, 10 * num_blocks, batch_size, steps, bf16))
    print(
        f"\n## Training speed: tiny setup ({num_blocks} blocks, width {config.hidden_size}, {config.image_size[0]}x"
        f"{config.image_size[1]}, patch {config.patch_size[0]}), batch {batch_size}, {'bf16' if bf16 else 'fp32'}\n"
    )
    print("| phase | trainable blocks | steps/s (best of 3) | images/s | speed-up |")
    print("|---|---|---|---|---|")
    print(f"| fully unfrozen (baseline) | {num_blocks} | {max(full):.2f} | {max(full) * batch_size:.0f} | 1.00x |")
    print(
        f"| top block only (epoch 0) | 1 | {max(top):.2f} | {max(top) * batch_size:.0f} | {max(top) / max(full):.2f}x |"
    )
    config_columns = {"setup": "tiny", "batch": batch_size, "steps": steps, "precision": "bf16" if bf16 else "fp32"}
    return [
        {
            **config_columns,
            "phase": phase,
            "trainable_blocks": blocks,
            "baseline": blocks == num_blocks,
            "steps_per_s": max(rates),
            "images_per_s": max(rates) * batch_size,
            "speedup": max(rates) / max(full),
        }
        for phase, blocks, rates in (("fully unfrozen", num_blocks, full), ("top block only (epoch 0)", 1, top))
    ]


GEOMETRIES = {
    "patch 16 (8 rows, 33 tokens)": 16,
    "patch 8x16 (16 rows, 65 tokens)": [8, 16],
    "patch 8 (16 rows, 129 tokens)": 8,
}


def geometry_table(steps: int, num_labels: int = 740, batch_size: int = 64) -> list[dict]:
    """Seconds per training step of each `GEOMETRIES` candidate (the tiny ViT otherwise), best of 2 interleaved rounds;
    prints the table and returns its rows (patch 16: the baseline)."""
    config, _, _ = load_setup("tiny")
    models = {}
    for name, patch in GEOMETRIES.items():
        candidate = copy.deepcopy(config)
        candidate.backbone_config.patch_size = patch
        candidate.num_labels = num_labels
        torch.manual_seed(0)
        models[name] = LATransformerForReID(type(config)(**candidate.to_dict())).train()
    generator = torch.Generator().manual_seed(0)
    pixel_values = torch.randn(batch_size, 3, *config.image_size, generator=generator)
    labels = torch.randint(0, num_labels, (batch_size,), generator=generator)
    optimizers = {name: torch.optim.AdamW(model.parameters(), lr=1e-3) for name, model in models.items()}

    def run(name: str, count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            models[name](pixel_values, labels=labels).loss.backward()
            optimizers[name].step()
            optimizers[name].zero_grad(set_to_none=True)
        return (time.perf_counter() - start) / max(1, count)

    for name in models:
        run(name, 1)  # warm-up
    seconds = {name: [] for name in models}
    for _ in range(2):
        for name in models:
            seconds[name].append(run(name, steps))
    base = min(seconds[next(iter(models))])
    print(
        f"\n## From-scratch geometry at {config.image_size[0]}x{config.image_size[1]}: 6 blocks, width 192, "
        f"batch {batch_size}, {num_labels} classes, fp32, {steps} steps x 2 rounds each\n"
    )
    print("| geometry | s/step (best) | images/s | vs patch 16 |")
    print("|---|---|---|---|")
    rows = []
    for name in models:
        best = min(seconds[name])
        print(f"| {name} | {best:.2f} | {batch_size / best:.0f} | {best / base:.2f}x |")
        rows.append(
            {
                "batch": batch_size,
                "steps": steps,
                "geometry": name,
                "baseline": name == next(iter(models)),
                "seconds_per_step": best,
                "images_per_s": batch_size / best,
                "vs_patch_16": best / base,
            }
        )
    return rows


def kornia_reader(decoded, recipe: dict):
    """The seeded augmentation before it became plain tensor ops (the baseline row): each image under `fork_rng`,
    the global generator seeded with its seed, kornia's flip and random erasing modules."""
    import kornia.augmentation as K

    flip = K.RandomHorizontalFlip(p=recipe["hflip_p"])
    erase = K.RandomErasing(scale=(0.02, 0.33), value=0.0, p=recipe["erasing_p"])
    transform = decoded.transform

    def read(index: int) -> torch.Tensor:
        pixels = decoded.images[index : index + 1].float() * decoded.rescale_factor
        (seed,) = transform.sample_seeds([], [decoded.keys[index] if decoded.keys else str(index)])
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return erase((flip(pixels).clamp_(0.0, 1.0) - transform.mean) / transform.std)[0]

    return read


def input_pipeline_table(batches: int, batch_size: int = 64) -> list[dict]:
    """Seconds per batch of the training input: per-step decoding (`set_transform`, the baseline) vs decoded once into
    memory; prints the table and returns its rows."""
    import datasets

    from hf_lareid.data import build_train_transform, generate_synthetic_reid, load_reid_dataset
    from hf_lareid.data.in_memory import InMemoryReIDDataset

    config, processor, recipe = load_setup("tiny")
    augmentations = {name: recipe[name] for name in ("hflip_p", "vflip_p", "color_jitter_p", "erasing_p")}
    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as tmp:
        root = generate_synthetic_reid(
            Path(tmp) / "data", num_ids=40, num_cameras=4, images_per_camera=4, image_size=config.image_size
        )
        train = load_reid_dataset("market1501", data_dir=root, splits=["train"], cache_dir=Path(tmp) / "cache")["train"]
        transform = build_train_transform(processor, **augmentations, seed=0)  # seeded, as the Trainer runs it
        start = time.perf_counter()
        decoded = InMemoryReIDDataset(train, transform)
        decode_seconds = time.perf_counter() - start
        per_step = train.with_transform(transform)
        rows = [index % len(train) for index in range(batches * batch_size)]

        def seconds_per_batch(read) -> float:
            start = time.perf_counter()
            for index in rows:  # the Trainer's DataLoader reads one row at a time
                read(index)
            return (time.perf_counter() - start) / batches

        readers = {
            "decoded every step (set_transform)": per_step.__getitem__,
            "decoded once into memory (decode_once)": decoded.__getitem__,
            "decoded once, kornia flip + erasing per image (the earlier augmentation)": kornia_reader(decoded, recipe),
        }
        timings: dict[str, list[float]] = {name: [] for name in readers}
        for _ in range(2):
            for name, read in readers.items():
                timings[name].append(seconds_per_batch(read))
    print(
        f"\n## Training input pipeline, tiny augmentations {augmentations}, {config.image_size[0]}x"
        f"{config.image_size[1]} JPEGs, {batches} batches of {batch_size} x 2 rounds; decoding {len(train)} "
        f"images once took {decode_seconds:.1f} s\n"
    )
    print("| input | s per batch of 64 (best) | vs per-step decoding |")
    print("|---|---|---|")
    base = min(next(iter(timings.values())))
    rows = []
    for name, values in timings.items():
        print(f"| {name} | {min(values):.3f} | {min(values) / base:.2f}x |")
        rows.append(
            {
                "batches": batches,
                "batch": batch_size,
                "input": name,
                "baseline": name == next(iter(timings)),
                "seconds_per_batch": min(values),
                "vs_per_step_decoding": min(values) / base,
            }
        )
    return rows


def learning_table(steps: int, batch_size: int, bf16: bool) -> list[dict]:
    """Prints Rank-1 / mAP of the tiny setup untrained (the baseline) and trained `steps` steps; returns the rows."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        final = train_main(
            [
                "--output_dir",
                tmp,
                "--max_steps",
                str(steps),
                "--per_device_train_batch_size",
                str(batch_size),
                "--eval_on_start",
                "True",
                "--save_strategy",
                "no",
                "--disable_tqdm",
                "True",
                "--bf16",
                str(bf16),
                "--logging_steps",
                "50",
                "--seed",
                "0",
            ]
        )
        seconds = time.perf_counter() - start
        history = json.loads((Path(tmp) / "trainer_state.json").read_text())["log_history"]
    untrained = next(entry for entry in history if "eval_rank1" in entry)
    print(
        f"\n## tiny setup from scratch on the generated set (100 identities: 50 train, 50 query/gallery), "
        f"{steps} steps of batch {batch_size}, {'bf16' if bf16 else 'fp32'}, {seconds:.0f} s in all\n"
    )
    print("| model | Rank-1 | Rank-5 | mAP | mINP |")
    print("|---|---|---|---|---|")
    rows = []
    for name, metrics in (("untrained (baseline)", untrained), (f"trained {steps} steps", final)):
        print(
            f"| {name} | {100 * metrics['eval_rank1']:.1f} | {100 * metrics['eval_rank5']:.1f} | "
            f"{100 * metrics['eval_mAP']:.1f} | {100 * metrics['eval_mINP']:.1f} |"
        )
        rows.append(
            {
                "setup": "tiny",
                "steps": steps,
                "batch": batch_size,
                "precision": "bf16" if bf16 else "fp32",
                "model": name.removesuffix(" (baseline)"),
                "baseline": metrics is untrained,
                **{key: metrics[f"eval_{key}"] for key in ("rank1", "rank5", "mAP", "mINP")},
                "total_seconds": seconds,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="training steps of the from-scratch run")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--speed_steps", type=int, default=8, help="timed steps per phase and round")
    parser.add_argument("--bf16", choices=["auto", "True", "False"], default="False")
    parser.add_argument("--skip_learning", action="store_true", help="only the speed table")
    parser.add_argument("--geometry", action="store_true", help="also the geometry and input-pipeline tables")
    parser.add_argument("--geometry_steps", type=int, default=3, help="timed steps per geometry and round")
    add_results_dir_argument(parser)
    args = parser.parse_args()
    bf16 = torch.cpu._is_avx512_bf16_supported() if args.bf16 == "auto" else args.bf16 == "True"
    print_cpu_info()
    write_results("train_blockwise_speed", speed_table(args.batch_size, args.speed_steps, bf16), args.results_dir)
    if args.geometry:
        write_results("train_geometry", geometry_table(args.geometry_steps), args.results_dir)
        write_results("train_input_pipeline", input_pipeline_table(batches=3), args.results_dir)
    if not args.skip_learning:
        write_results("train_learning", learning_table(args.steps, args.batch_size, bf16), args.results_dir)


if __name__ == "__main__":
    main()
