"""Does the training recipe learn? A setup trained within a time budget, next to a colour histogram, on any data set.

Trains `--setup` from `--backbone` (default: `tiny` from scratch; with a pretrained backbone, a Hub id or a folder,
`lareid train`'s choice: the `small` recipe) on `--data_dir` within `--minutes`, then prints one table: for each
evaluation set (the training data set's query/gallery, and `--eval_dir` if given) Rank-1, Rank-5 and mAP of

1. the stripe colour histogram (the baseline, no learning): per horizontal stripe of the image an HSV histogram,
   square-rooted, the stripes concatenated, compared by cosine; computed in the same run on the same images;
2. the model untrained (the same initial weights);
3. the model trained (with `--all_embeddings`: once per embedding, `gelt`, `local` and `bottleneck`);

then the loss trajectory per epoch (summed and per-row cross-entropy, its fraction of chance `ln(num_labels)`, the
triplet loss when on), a learning verdict, the training time, steps, epochs and the CPU; the rows go to
`benchmarks/results/recipe.csv`. The number of steps is the setup's (epochs x steps per epoch) unless that would not
fit the budget at the step times measured per unfreezing stage: then it is cut before training starts.

With a pretrained backbone it first checks `from_backbone` on the real weights (position embeddings resampled to the
re-ID grid, other weights as saved, the checkpoint's classifier dropped, outputs finite). `--time_stages` only
measures the step time of every epoch's unfreezing stage (and, as the baseline, of a step with every block training),
estimates the run's minutes on `--estimate_images` crops and writes `benchmarks/results/recipe_step_times.csv`.

    python benchmarks/bench_recipe.py --minutes 3                                  # tiny on the generated set
    python benchmarks/bench_recipe.py --backbone facebook/deit-tiny-patch16-224 --time_stages   # small's step times
    python benchmarks/bench_recipe.py --data_dir /data/Market-1501 --dataset market1501 \\
        --eval_dir /data/other_people --eval_dataset identity_folders --minutes 20

The generated set only shows that nothing regressed; real photos are the judge.
"""

from __future__ import annotations

import argparse
import copy
import math
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from _common import (  # benchmarks/_common.py (scripts run as python benchmarks/x.py)
    add_results_dir_argument,
    print_cpu_info,
    write_results,
)
from PIL import Image
from transformers import TrainerCallback

from hf_lareid.data import load_reid_dataset
from hf_lareid.embedding import FeatureSet
from hf_lareid.scripts.train import RANDOM_BACKBONE, parse_arguments, prepare_trainer
from hf_lareid.tasks.evaluate import evaluate_feature_sets, evaluate_model
from hf_lareid.training.learning_check import CHANCE_FRACTION_LIMIT
from hf_lareid.utils.images import load_rgb

EMBEDDINGS = ("gelt", "local", "bottleneck")
STRIPES = 6
HSV_BINS = (8, 4, 4)  # hue, saturation, value: 128 bins per stripe
HISTOGRAM_SIZE = (128, 64)  # (height, width) the images are resized to first


# --------------------------------------------------------------------------------------------- colour histogram
def stripe_histogram(image: Image.Image, stripes: int = STRIPES, bins: Sequence[int] = HSV_BINS) -> np.ndarray:
    """
    The baseline's feature of one image: `(stripes * prod(bins),)` float32, unit norm.

    The image is resized to `HISTOGRAM_SIZE` and cut into `stripes` horizontal stripes; each stripe gets a joint HSV
    histogram (normalised to sum 1, then square-rooted: the Hellinger map, so cosine compares distributions); the
    stripes are concatenated and the whole vector divided by its norm.
    """
    height, width = HISTOGRAM_SIZE
    hsv = np.asarray(load_rgb(image).resize((width, height), Image.Resampling.BILINEAR).convert("HSV"), dtype=np.int64)
    bins = np.asarray(bins)
    quantised = hsv * bins // 256  # (height, width, 3), each channel in [0, bins)
    codes = (quantised[..., 0] * bins[1] + quantised[..., 1]) * bins[2] + quantised[..., 2]  # (height, width)
    edges = np.linspace(0, height, stripes + 1).round().astype(int)
    parts = []
    for top, bottom in zip(edges[:-1], edges[1:]):
        counts = np.bincount(codes[top:bottom].ravel(), minlength=int(bins.prod())).astype(np.float32)
        parts.append(np.sqrt(counts / max(counts.sum(), 1.0)))
    feature = np.concatenate(parts)
    return feature / max(float(np.linalg.norm(feature)), 1e-12)


def histogram_features(split: Any) -> FeatureSet:
    """[`stripe_histogram`] of every image of a query or gallery split (`image`, `person_id`, `camera_id`, `path`)."""
    rows = split.with_format(None)
    embeddings = np.stack([stripe_histogram(image) for image in rows["image"]])
    paths = list(rows["path"]) if "path" in rows.column_names else [""] * len(rows)
    return FeatureSet(
        embeddings=embeddings,
        person_ids=np.asarray(rows["person_id"], dtype=np.int64),
        camera_ids=np.asarray(rows["camera_id"], dtype=np.int64),
        paths=paths,
    )


def evaluate_histogram(split_pair: tuple[Any, Any]) -> dict[str, Any]:
    """Rank-k and mAP of the stripe colour histogram on `(query, gallery)`."""
    query, gallery = split_pair
    return evaluate_feature_sets(histogram_features(query), histogram_features(gallery), progress=False)


# ----------------------------------------------------------------------------------------------------- budget
class StopAtBudget(TrainerCallback):
    """Stops training once `seconds` have passed since training began (a safety net; the step count should fit)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = 0.0
        self.stopped_early = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if time.monotonic() - self.start > self.seconds:
            control.should_training_stop = self.stopped_early = True
        return control


def seconds_per_step(trainer: Any, epoch: int = 0, steps: int = 3) -> float:
    """
    The training step time (data + forward + backward + optimizer) of `trainer`'s setup in `epoch` (0-based): on a
    copy of its model with the blocks that epoch's blockwise-unfreezing stage trains (every block without blockwise
    unfreezing); the median of `steps` steps after one warm-up step.
    """
    model = copy.deepcopy(trainer.model).train()
    if trainer.unfreeze_callback is not None:
        trainer.unfreeze_callback.apply(epoch, model)
    optimizer_class = torch.optim.Adam if trainer.args.optimizer == "adam" else torch.optim.AdamW
    optimizer = optimizer_class(model.parameters(), lr=trainer.args.learning_rate)
    batches = iter(trainer.get_train_dataloader())
    timings = []
    for _ in range(steps + 1):  # the first step warms up
        start = time.perf_counter()
        batch = next(batches)
        model(**batch).loss.backward()  # a triplet term costs next to nothing beside the ViT
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        timings.append(time.perf_counter() - start)
    return float(np.median(timings[1:]))


def epoch_step_seconds(trainer: Any, num_epochs: int, steps: int = 3) -> list[float]:
    """The step time of every epoch of the run: one measurement per blockwise-unfreezing stage (or one in all)."""
    callback = trainer.unfreeze_callback
    if callback is None:
        return [seconds_per_step(trainer, 0, steps)] * num_epochs
    num_blocks = len(trainer.model.backbone_groups().blocks)
    stages = callback.schedule(num_blocks, num_epochs)
    measured: dict[int, float] = {}
    for stage in stages:
        if stage.num_trainable_blocks not in measured:
            measured[stage.num_trainable_blocks] = seconds_per_step(trainer, stage.epoch, steps)
    return [measured[stage.num_trainable_blocks] for stage in stages]


def fit_to_budget(trainer: Any, minutes: float, margin: float = 0.9) -> dict[str, Any]:
    """
    Sets `trainer.args.max_steps` to the setup's steps, or to the steps that `margin * minutes` holds at the measured
    step time of each epoch (fewer steps keep the learning-rate schedule running to its end).
    """
    steps_per_epoch = len(trainer.get_train_dataloader())
    num_epochs = max(1, math.ceil(trainer.args.num_train_epochs))
    setup_steps = int(math.ceil(trainer.args.num_train_epochs * steps_per_epoch))
    step_seconds = epoch_step_seconds(trainer, num_epochs)
    budget, affordable = margin * minutes * 60, 0
    for epoch_seconds in step_seconds:
        steps = min(steps_per_epoch, int(budget // epoch_seconds))
        affordable, budget = affordable + steps, budget - steps * epoch_seconds
        if steps < steps_per_epoch:
            break
    trainer.args.max_steps = max(1, min(setup_steps, affordable))
    return {"steps_per_epoch": steps_per_epoch, "setup_steps": setup_steps, "epoch_step_seconds": step_seconds}


# ------------------------------------------------------------------------------------------------- step times
def stage_timings(trainer: Any, num_images: int, steps: int) -> list[dict[str, Any]]:
    """
    One row per epoch of the setup: its trainable blocks, the measured step time and the minutes that epoch takes on
    `num_images` training crops (full batches); `timed_steps` steps per distinct stage after a warm-up.
    """
    num_epochs = max(1, math.ceil(trainer.args.num_train_epochs))
    batch = trainer.args.per_device_train_batch_size
    step_seconds = epoch_step_seconds(trainer, num_epochs, steps)
    num_blocks = len(trainer.model.backbone_groups().blocks)
    callback = trainer.unfreeze_callback
    stages = callback.schedule(num_blocks, num_epochs) if callback is not None else None
    rows = []
    for epoch, seconds in enumerate(step_seconds):
        rows.append(
            {
                "epoch": epoch + 1,
                "trainable_blocks": stages[epoch].num_trainable_blocks if stages else num_blocks,
                "seconds_per_step": seconds,
                "images_per_second": batch / seconds,
                "epoch_minutes": (num_images // batch) * seconds / 60,
            }
        )
    return rows


# ------------------------------------------------------------------------------------------- pretrained backbone
def check_pretrained_backbone(model: Any, backbone: str, batch: dict[str, torch.Tensor]) -> dict[str, bool]:
    """
    `from_backbone` on real weights: the position embeddings resampled to the model's grid (the class token's kept),
    every other backbone weight loaded as saved, the checkpoint's classifier (e.g. ImageNet's) dropped, and the
    outputs of a training `batch` finite.
    """
    from transformers import AutoModel

    source = AutoModel.from_pretrained(backbone)
    loaded = model.vit.state_dict()
    key = "embeddings.position_embeddings"
    source_positions, positions = source.state_dict()[key], loaded[key]
    grid_rows, grid_cols = model.config.grid_size
    others = [name for name in source.state_dict() if name != key and not name.startswith("pooler.")]
    with torch.no_grad():
        outputs = copy.deepcopy(model).eval()(pixel_values=batch["pixel_values"])
    return {
        "position embeddings resampled to the re-ID grid": positions.shape[1] == 1 + grid_rows * grid_cols
        and positions.shape[1] != source_positions.shape[1]
        and torch.equal(positions[:, 0], source_positions[:, 0]),
        "other backbone weights as saved": all(torch.equal(loaded[name], source.state_dict()[name]) for name in others),
        "checkpoint classifier dropped": not any(name.startswith("classifier") for name in model.state_dict())
        and model.config.num_labels == len(model.config.id2label),
        "outputs finite": bool(torch.isfinite(outputs.embeddings).all() and torch.isfinite(outputs.logits).all()),
    }


# ------------------------------------------------------------------------------------------------ the verdict
def learning_verdict(epochs: list[dict[str, float]], trained_rank1: float, histogram_rank1: float) -> str:
    """
    "learning" or "NOT learning", with the reasons: the per-row cross-entropy still above 0.9 of chance or not
    falling over the epochs, the triplet loss at its margin, or the trained model ranking below the histogram.
    """
    problems = []
    if not epochs:
        problems.append("no epoch finished")
    else:
        first, last = epochs[0]["ce_chance_fraction"], epochs[-1]["ce_chance_fraction"]
        if last > CHANCE_FRACTION_LIMIT:
            problems.append(f"the per-row cross-entropy ends at {last:.2f} of chance")
        if len(epochs) > 1 and last >= first:
            problems.append(f"the cross-entropy did not fall ({first:.2f} -> {last:.2f} of chance)")
    if trained_rank1 <= histogram_rank1:
        problems.append(f"Rank-1 {100 * trained_rank1:.1f} is not above the histogram's {100 * histogram_rank1:.1f}")
    return "NOT learning: " + "; ".join(problems) if problems else "learning"


def format_trajectory(epochs: list[dict[str, float]], num_parts: int) -> str:
    """The per-epoch loss trajectory as a Markdown table (summed and per-row cross-entropy, triplet if on)."""
    triplet = any("triplet_loss" in epoch for epoch in epochs)
    lines = [
        "| epoch | summed CE | per-row CE | of chance |" + (" triplet |" if triplet else ""),
        "|---|---|---|---|" + ("---|" if triplet else ""),
    ]
    for epoch in epochs:
        cells = [
            str(epoch["epoch"]),
            f"{epoch['ce_per_row'] * num_parts:.2f}",
            f"{epoch['ce_per_row']:.3f}",
            f"{epoch['ce_chance_fraction']:.3f}",
        ]
        if triplet:
            cells.append(f"{epoch.get('triplet_loss', float('nan')):.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------ table
def format_table(rows: list[dict[str, Any]], set_names: Sequence[str]) -> str:
    """A Markdown table: one row per method, Rank-1 / Rank-5 / mAP (in %) for each evaluation set."""
    header = "| method | " + " | ".join(f"{name} Rank-1 | {name} Rank-5 | {name} mAP" for name in set_names) + " |"
    lines = [header, "|---|" + "---|---|---|" * len(set_names)]
    for row in rows:
        cells = []
        for name in set_names:
            metrics = row["sets"][name]
            cells += [f"{100 * metrics['rank1']:.1f}", f"{100 * metrics['rank5']:.1f}", f"{100 * metrics['mAP']:.1f}"]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def evaluate_model_on(model: Any, sets: dict[str, tuple[Any, Any]], image_processor: Any, embedding: str) -> dict:
    """`{set name: metrics}` of `model` with `config.embedding = embedding` (restored afterwards)."""
    previous, model.config.embedding = model.config.embedding, embedding
    try:
        return {
            name: evaluate_model(
                model.eval(), query, gallery, image_processor=image_processor, batch_size=128, progress=False
            ).metrics
            for name, (query, gallery) in sets.items()
        }
    finally:
        model.config.embedding = previous


# ------------------------------------------------------------------------------------------------------- main
def training_flags(args: argparse.Namespace, output_dir: str) -> list[str]:
    flags = ["--backbone", args.backbone, "--output_dir", output_dir, "--seed", str(args.seed)]
    flags += ["--save_strategy", "no", "--disable_tqdm", "True", "--report_to", "none", "--logging_steps", "50"]
    if args.setup:
        flags += ["--setup", args.setup]
    if args.data_dir:
        flags += ["--dataset", args.dataset, "--data_dir", args.data_dir]
    return flags + list(args.extra)


def load_eval_set(name: str, data_dir: str) -> tuple[Any, Any]:
    """The query and gallery splits of another data set (a folder-per-person set is all evaluation)."""
    options = {"num_train_ids": 0} if name == "identity_folders" else {"splits": ["query", "gallery"]}
    data = load_reid_dataset(name, data_dir=data_dir, **options)
    return data["query"], data["gallery"]


def time_stages(args: argparse.Namespace, trainer: Any, command: list[str] | None) -> None:
    """`--time_stages`: the step time of every epoch's unfreezing stage, the run's estimated minutes, the CSV rows."""
    model_args = trainer.model_card_fields
    rows = stage_timings(trainer, args.estimate_images, args.timed_steps)
    baseline = stage_timings_all_blocks(trainer, args.estimate_images, args.timed_steps)
    batch = trainer.args.per_device_train_batch_size
    print(
        f"\n## Step times of `{model_args['setup']}` ({args.backbone}), batch {batch}, {args.estimate_images} crops\n"
    )
    print("| epoch | trainable blocks | s/step | images/s | epoch minutes |")
    print("|---|---|---|---|---|")
    for row in [*rows, baseline]:
        epoch = row["epoch"] or "every block (baseline)"
        print(
            f"| {epoch} | {row['trainable_blocks']} | {row['seconds_per_step']:.3f} | {row['images_per_second']:.1f} "
            f"| {row['epoch_minutes']:.1f} |"
        )
    total = sum(row["epoch_minutes"] for row in rows)
    print(f"\n- {len(rows)} epochs on {args.estimate_images} crops: {total:.1f} min of training steps")
    common = {"setup": model_args["setup"], "backbone": args.backbone, "batch": batch, "images": args.estimate_images}
    results = [{**common, **row, "baseline": False, "run_minutes": total} for row in rows]
    results.append({**common, **baseline, "baseline": True, "run_minutes": None})
    write_results("recipe_step_times", results, args.results_dir, command)


def stage_timings_all_blocks(trainer: Any, num_images: int, steps: int) -> dict[str, Any]:
    """The baseline of `--time_stages`: a step with every block training (as without blockwise unfreezing)."""
    callback, trainer.unfreeze_callback = trainer.unfreeze_callback, None
    try:
        seconds = seconds_per_step(trainer, 0, steps)
    finally:
        trainer.unfreeze_callback = callback
    batch = trainer.args.per_device_train_batch_size
    return {
        "epoch": None,
        "trainable_blocks": len(trainer.model.backbone_groups().blocks),
        "seconds_per_step": seconds,
        "images_per_second": batch / seconds,
        "epoch_minutes": (num_images // batch) * seconds / 60,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", help="training data set folder (default: the generated set)")
    parser.add_argument("--dataset", default="market1501", help="its loader (with --data_dir): market1501, ...")
    parser.add_argument("--eval_dir", help="another data set, evaluation only")
    parser.add_argument("--eval_dataset", default="identity_folders", help="its loader (default identity_folders)")
    parser.add_argument(
        "--backbone", default="random", help="random (from scratch, default) or a pretrained backbone: Hub id or folder"
    )
    parser.add_argument(
        "--setup", help="the setup (default: lareid train's: tiny from scratch, small with a pretrained backbone)"
    )
    parser.add_argument("--minutes", type=float, default=20.0, help="training time budget (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all_embeddings", action="store_true", help="evaluate the trained model with each embedding")
    parser.add_argument(
        "--time_stages",
        action="store_true",
        help="only measure the step time of each epoch's unfreezing stage and estimate the run's minutes",
    )
    parser.add_argument("--timed_steps", type=int, default=3, help="timed steps per stage (after one warm-up)")
    parser.add_argument("--estimate_images", type=int, default=7200, help="training crops of the estimate (7200)")
    add_results_dir_argument(parser)
    parser.add_argument("extra", nargs="*", help="more `lareid train` flags after --, e.g. -- --erasing_p 0")
    args = parser.parse_args(argv)
    info = print_cpu_info()
    command = None if argv is None else [__file__, *argv]

    with tempfile.TemporaryDirectory() as output_dir:
        budget = StopAtBudget(args.minutes * 60)
        trainer = prepare_trainer(parse_arguments(training_flags(args, output_dir)), callbacks=[budget])
        model, image_processor = trainer.model, trainer.processing_class
        setup = trainer.model_card_fields["setup"]
        if args.backbone != RANDOM_BACKBONE:
            batch = next(iter(trainer.get_train_dataloader()))
            checks = check_pretrained_backbone(model, args.backbone, batch)
            print(f"\nfrom_backbone({args.backbone}):")
            for name, passed in checks.items():
                print(f"- {name}: {'yes' if passed else 'NO'}")
        if args.time_stages:
            time_stages(args, trainer, command)
            return
        sets = {"set 1": (trainer.query_dataset, trainer.gallery_dataset)}
        if args.eval_dir:
            sets["set 2"] = load_eval_set(args.eval_dataset, args.eval_dir)
        sizes = {name: f"{len(q)} queries / {len(g)} gallery" for name, (q, g) in sets.items()}

        rows = [
            {
                "name": "stripe HSV colour histogram (no learning)",
                "sets": {name: evaluate_histogram(pair) for name, pair in sets.items()},
            }
        ]
        rows.append(
            {"name": "untrained model", "sets": evaluate_model_on(model, sets, image_processor, model.config.embedding)}
        )
        sizing = fit_to_budget(trainer, args.minutes)
        start = time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - start
        embeddings = EMBEDDINGS if args.all_embeddings else (model.config.embedding,)
        for embedding in embeddings:
            rows.append(
                {
                    "name": f"trained model, {embedding} embedding",
                    "sets": evaluate_model_on(model, sets, image_processor, embedding),
                }
            )

    steps = trainer.state.global_step
    epochs = steps / sizing["steps_per_epoch"]
    trajectory = trainer.learning_check.epochs
    verdict = learning_verdict(trajectory, rows[-1]["sets"]["set 1"]["rank1"], rows[0]["sets"]["set 1"]["rank1"])
    source = f"from {args.backbone}" if args.backbone != RANDOM_BACKBONE else "from scratch"
    print(
        f"\n## Setup `{setup}` {source} on {args.data_dir or 'the generated set'}"
        f"{f' ({args.dataset})' if args.data_dir else ''}, budget {args.minutes:g} min\n"
    )
    print(format_table(rows, list(sets)))
    print()
    print(format_trajectory(trajectory, model.config.num_parts))
    print(f"\nverdict: {verdict}")
    if trainer.learning_check.warning:
        print(f"training warned: {trainer.learning_check.warning}")
    print()
    for name, size in sizes.items():
        where = args.eval_dir if name == "set 2" else "the training data set's query/gallery"
        print(f"- {name}: {where}, {size}")
    step_seconds = sizing["epoch_step_seconds"]
    print(
        f"- training: {train_seconds / 60:.1f} min, {steps} steps of batch {trainer.args.per_device_train_batch_size} "
        f"({epochs:.1f} epochs; the setup asks {sizing['setup_steps']} steps, measured "
        f"{min(step_seconds):.2f}-{max(step_seconds):.2f} s/step before training)"
        f"{' - stopped at the budget' if budget.stopped_early else ''}"
    )
    print(f"- CPU: {info['model']}, {info['cores']} cores, load average {info['load_average']} at the start")
    run = {
        "setup": setup,
        "backbone": args.backbone,
        "data": args.data_dir or "generated",
        "minutes": args.minutes,
        "steps": steps,
        "batch": trainer.args.per_device_train_batch_size,
        "train_minutes": train_seconds / 60,
        "epoch_ce_chance_fractions": " ".join(f"{epoch['ce_chance_fraction']:.3f}" for epoch in trajectory),
        "verdict": verdict,
    }
    results = [
        {
            **run,
            "method": row["name"],
            "baseline": number == 0,  # the colour histogram
            "eval_set": args.eval_dir if name == "set 2" else "query/gallery of the training set",
            **{key: row["sets"][name][key] for key in ("rank1", "rank5", "mAP")},
        }
        for number, row in enumerate(rows)
        for name in sets
    ]
    write_results("recipe", results, args.results_dir, command)


if __name__ == "__main__":
    main()
