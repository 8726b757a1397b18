"""Does the training recipe learn? A setup trained within a time budget, next to a colour histogram, on any data set.

Trains `--setup` (default `tiny`, with its defaults) from scratch on `--data_dir` within `--minutes`, then prints one
table: for each evaluation set (the training data set's query/gallery, and `--eval_dir` if given) Rank-1, Rank-5 and
mAP of

1. the stripe colour histogram (the baseline, no learning): per horizontal stripe of the image an HSV histogram,
   square-rooted, the stripes concatenated, compared by cosine; computed in the same run on the same images;
2. the model untrained (the same initial weights);
3. the model trained (with `--all_embeddings`: once per embedding, `gelt`, `local` and `bottleneck`);

plus the training time, steps, epochs and the CPU. The number of steps is the setup's (epochs x steps per epoch)
unless that would not fit the budget: then it is cut to what the measured step time allows, before training starts,
so the learning-rate schedule still runs to its end.

    python benchmarks/bench_recipe.py --minutes 3                                  # the generated set
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
from _common import add_results_dir_argument, print_cpu_info, write_results  # benchmarks/_common.py
from PIL import Image
from transformers import TrainerCallback

from hf_lareid.data import load_reid_dataset
from hf_lareid.embedding import FeatureSet
from hf_lareid.image_utils import load_rgb
from hf_lareid.query_gallery_evaluation import evaluate_feature_sets, evaluate_model
from hf_lareid.training.arguments import parse_arguments
from hf_lareid.training.run import prepare_trainer

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


def seconds_per_step(trainer: Any, steps: int = 3) -> float:
    """The training step time (data + forward + backward + optimizer) of `trainer`'s setup, on a copy of its model."""
    model = copy.deepcopy(trainer.model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=trainer.args.learning_rate)
    batches = iter(trainer.get_train_dataloader())
    timings = []
    for _ in range(steps + 1):  # the first step warms up
        start = time.perf_counter()
        batch = next(batches)
        model(**batch).loss.backward()  # the triplet term costs next to nothing beside the ViT
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        timings.append(time.perf_counter() - start)
    return float(np.median(timings[1:]))


def fit_to_budget(trainer: Any, minutes: float, margin: float = 0.9) -> dict[str, float]:
    """Sets `trainer.args.max_steps` to the setup's steps, or fewer if `margin * minutes` would not hold them."""
    steps_per_epoch = len(trainer.get_train_dataloader())
    setup_steps = int(math.ceil(trainer.args.num_train_epochs * steps_per_epoch))
    step_seconds = seconds_per_step(trainer)
    affordable = max(1, int(margin * minutes * 60 / step_seconds))
    trainer.args.max_steps = min(setup_steps, affordable)
    return {"steps_per_epoch": steps_per_epoch, "setup_steps": setup_steps, "seconds_per_step": step_seconds}


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
    flags = [
        "--setup",
        args.setup,
        "--backbone",
        "random",
        "--output_dir",
        output_dir,
        "--seed",
        str(args.seed),
        "--save_strategy",
        "no",
        "--disable_tqdm",
        "True",
        "--report_to",
        "none",
        "--logging_steps",
        "50",
    ]
    if args.data_dir:
        flags += ["--dataset", args.dataset, "--data_dir", args.data_dir]
    return flags + list(args.extra)


def load_eval_set(name: str, data_dir: str) -> tuple[Any, Any]:
    """The query and gallery splits of another data set (a folder-per-person set is all evaluation)."""
    options = {"num_train_ids": 0} if name == "identity_folders" else {"splits": ["query", "gallery"]}
    data = load_reid_dataset(name, data_dir=data_dir, **options)
    return data["query"], data["gallery"]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", help="training data set folder (default: the generated set)")
    parser.add_argument("--dataset", default="market1501", help="its loader (with --data_dir): market1501, ...")
    parser.add_argument("--eval_dir", help="another data set, evaluation only")
    parser.add_argument("--eval_dataset", default="identity_folders", help="its loader (default identity_folders)")
    parser.add_argument("--setup", default="tiny", help="the setup to train from scratch (default tiny)")
    parser.add_argument("--minutes", type=float, default=20.0, help="training time budget (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all_embeddings", action="store_true", help="evaluate the trained model with each embedding")
    add_results_dir_argument(parser)
    parser.add_argument("extra", nargs="*", help="more `lareid train` flags after --, e.g. -- --erasing_p 0")
    args = parser.parse_args(argv)
    info = print_cpu_info()

    with tempfile.TemporaryDirectory() as output_dir:
        budget = StopAtBudget(args.minutes * 60)
        trainer = prepare_trainer(parse_arguments(training_flags(args, output_dir)), callbacks=[budget])
        model, image_processor = trainer.model, trainer.processing_class
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
    print(
        f"\n## Setup `{args.setup}` from scratch on {args.data_dir or 'the generated set'}"
        f"{f' ({args.dataset})' if args.data_dir else ''}, budget {args.minutes:g} min\n"
    )
    print(format_table(rows, list(sets)))
    print()
    for name, size in sizes.items():
        source = args.eval_dir if name == "set 2" else "the training data set's query/gallery"
        print(f"- {name}: {source}, {size}")
    print(
        f"- training: {train_seconds / 60:.1f} min, {steps} steps of batch {trainer.args.per_device_train_batch_size} "
        f"({epochs:.1f} epochs; the setup asks {sizing['setup_steps']} steps, measured "
        f"{sizing['seconds_per_step']:.2f} s/step before training){' - stopped at the budget' if budget.stopped_early else ''}"
    )
    print(f"- CPU: {info['model']}, {info['cores']} cores, load average {info['load_average']} at the start")
    run = {
        "setup": args.setup,
        "data": args.data_dir or "generated",
        "minutes": args.minutes,
        "steps": steps,
        "batch": trainer.args.per_device_train_batch_size,
        "train_minutes": train_seconds / 60,
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
    write_results("recipe", results, args.results_dir, None if argv is None else [__file__, *argv])


if __name__ == "__main__":
    main()
