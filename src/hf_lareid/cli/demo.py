"""`lareid demo`: the paper's recipe at small scale on generated people, with no download.

The recipe (populations, the two training stages, evaluation, calibration, index, queries, pictures) is
`hf_lareid.scripts.demo`; this module claims the output folder, runs the stages in order, prints their progress and
writes `metrics.json`.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import time
from pathlib import Path

from ..scripts.demo import (
    DATA_DIR,
    FINE_TUNED_DIR,
    FULL,
    INDEX_DIR,
    METRICS_FILE,
    OUTPUTS,
    PRETRAINED_DIR,
    QUICK,
    SETUP,
    SETUP_DIR,
    build_gallery_index,
    calibrate_and_save,
    demo_encoder,
    draw_pictures,
    evaluate_stage,
    generate_populations,
    prepare_training,
    quiet_dataset_builds,
    run_queries,
    train_and_save,
    training_values,
    with_new_heads,
    write_demo_setup,
)
from ._common import write_json

DESCRIPTION = (
    "Pretrain, fine-tune blockwise and evaluate the tiny LA-Transformer on generated people, index a gallery and "
    "draw pictures; no download (minutes on a CPU; --quick: the same steps at toy size)."
)


EXAMPLE = "lareid demo --output_dir ./lareid-demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output_dir", "--output-dir", default="lareid-demo", help="where everything goes (default: ./lareid-demo)"
    )
    parser.add_argument("--quick", action="store_true", help="the same steps at toy size (under a minute), for tests")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated people and of training")


# ------------------------------------------------------------------------------------------------------- summary
def list_files(root: Path) -> list[str]:
    """Every file under `root` with its size, relative to `root`; a folder of generated images is one line. The
    write locks beside folders (`.NAME.lock`, left in place as filelock does) are not listed."""
    lines = []
    for folder, subfolders, all_files in os.walk(root):
        subfolders.sort()
        relative = Path(folder).relative_to(root)
        files = [name for name in all_files if not (name.startswith(".") and name.endswith(".lock"))]
        images = [name for name in files if name.endswith(".jpg")]
        if images:
            lines.append(f"{relative}/  ({len(images)} generated images)")
        for name in sorted(set(files) - set(images)):
            lines.append(f"{relative / name}  ({_size(os.path.getsize(Path(folder) / name))})")
    return lines


def _size(num_bytes: int) -> str:
    return f"{num_bytes / 2**20:.1f} MiB" if num_bytes >= 2**20 else f"{num_bytes / 2**10:.1f} KiB"


def _stage(number: int, text: str) -> None:
    print(f"\n[{number}/6] {text}", flush=True)


# ----------------------------------------------------------------------------------------------------------- run
def run(args: argparse.Namespace) -> int:
    """
    Runs the demo into `args.output_dir` (`QUICK` sizes with `args.quick`, else `FULL`); returns 0. Every entry of
    [`OUTPUTS`] is claimed first: one that exists and was not written by hf_lareid stops the demo before any work.
    """
    from ..utils.extras import require_extra
    from ..utils.output_guard import claim_outputs

    require_extra("matplotlib", "plots", "The pictures of lareid demo")  # before minutes of training, not after

    output_dir = Path(args.output_dir).expanduser().absolute()
    with claim_outputs([output_dir / name for name in OUTPUTS], fix="choose another --output_dir"):
        return run_demo(args, output_dir)


def run_demo(args: argparse.Namespace, output_dir: Path) -> int:
    """The six steps of the demo into `output_dir`, whose outputs [`run`] claimed; returns 0."""
    from ..data import load_reid_dataset
    from ..evaluation.results_table import format_results_table
    from ..scripts.train import RANDOM_BACKBONE

    plan = QUICK if args.quick else FULL
    pretrained_dir, fine_tuned_dir = output_dir / PRETRAINED_DIR, output_dir / FINE_TUNED_DIR
    start = time.monotonic()
    setup_dir = output_dir / SETUP_DIR
    setup = write_demo_setup(setup_dir, plan)
    config, image_processor, _ = setup

    _stage(1, "Generating three disjoint populations of people")
    with quiet_dataset_builds():
        populations = generate_populations(output_dir / DATA_DIR, plan, args.seed, config.image_size)
        evaluation = load_reid_dataset("market1501", data_dir=populations.target, splits=["query", "gallery"])
    print(
        f"  {plan.num_cameras} cameras, {plan.images_per_camera} images per person and camera\n"
        f"  1. pretraining: {plan.pretraining_ids} people (+ {plan.validation_ids} held out for validation)\n"
        f"  2. fine-tuning: {plan.fine_tuning_ids} people\n"
        f"  3. evaluation:  {plan.evaluation_ids} other people "
        f"({len(evaluation['query'])} queries, {len(evaluation['gallery'])} gallery images)"
    )

    _stage(2, f"Pretraining the {SETUP} ViT from scratch on population 1 (all blocks train)")
    pretraining = prepare_training(
        training_values(
            plan, "pretraining", populations.pretraining, pretrained_dir, args.seed, RANDOM_BACKBONE, setup_dir
        ),
        setup,
        None,
        "pretraining",
        "lareid-demo-pretrained",
    )
    results = {"untrained": evaluate_stage(demo_encoder(pretraining.model, image_processor), evaluation)}
    train_and_save(pretraining)
    results["pretrained"] = evaluate_stage(demo_encoder(pretraining.model, image_processor), evaluation)

    _stage(3, "Fine-tuning on population 2 with blockwise unfreezing (Algorithm 1)")
    fine_tuning = prepare_training(
        training_values(
            plan, "fine-tuning", populations.target, fine_tuned_dir, args.seed, str(pretrained_dir), setup_dir
        ),
        setup,
        functools.partial(with_new_heads, str(pretrained_dir)),
        "fine-tuning",
        "lareid-demo-fine-tuned",
    )
    train_and_save(fine_tuning)
    fine_tuned = fine_tuning.model.eval()

    _stage(4, "Evaluating the fine-tuned model on population 3, calibrating its threshold on held-out people")
    encoder = demo_encoder(fine_tuned, image_processor)
    results["fine-tuned"] = evaluate_stage(encoder, evaluation)
    calibrate_and_save(encoder, populations, plan, fine_tuned_dir)
    write_json(
        output_dir / METRICS_FILE,
        {
            "evaluated_on": f"population 3: {plan.evaluation_ids} generated people never trained on (query/gallery of "
            f"{populations.target}), Market-1501 protocol",
            "seed": args.seed,
            "quick": bool(args.quick),
            "plan": dataclasses.asdict(plan),
            "stages": {name: result.metrics for name, result in results.items()},
        },
    )

    _stage(5, "Indexing the gallery of population 3 with FAISS and running a few queries")
    index = build_gallery_index(
        encoder, results["fine-tuned"], fine_tuned_dir, output_dir / INDEX_DIR, data_dir=populations.target
    )
    queries = run_queries(index, results["fine-tuned"].query, plan.num_queries, args.seed)

    _stage(6, "Drawing the pictures")
    log_histories = {"pretraining": pretraining.state.log_history, "fine-tuning": fine_tuning.state.log_history}
    draw_pictures(output_dir, results, queries, index, fine_tuned, image_processor, log_histories)

    print(f"\nPopulation 3 ({plan.evaluation_ids} people never trained on), Market-1501 protocol, in %:")
    print(format_results_table([{"name": name, **result.metrics} for name, result in results.items()]))
    minutes, seconds = divmod(round(time.monotonic() - start), 60)
    print(f"\nFinished in {minutes} min {seconds} s. Files in {output_dir}:")
    for line in list_files(output_dir):
        print(f"  {line}")
    print(
        f"\nSearch the gallery and compare people in a web page (the 'serve' extra):\n"
        f"  {serve_command(output_dir / INDEX_DIR)}"
    )
    return 0


def serve_command(index_dir: Path) -> str:
    """The one `lareid serve` command that opens the demo's index (its path quoted for the shell)."""
    import shlex

    return f"lareid serve --index_dir {shlex.quote(str(index_dir))}"
