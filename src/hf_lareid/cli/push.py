"""`lareid push`: upload a trained model folder (weights, config, image processor, model card) to the Hub."""

from __future__ import annotations

import argparse

DESCRIPTION = "Upload a trained model folder to the Hugging Face Hub (weights, config, image processor, model card)."
EXAMPLE = "lareid push ./tiny-reid my-user/la-transformer-tiny --dry_run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", help="a folder written by `lareid train` / examples/train.py")
    parser.add_argument("repo_id", help="the Hub repository, e.g. my-user/la-transformer-market")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument(
        "--dry_run",
        "--dry-run",
        action="store_true",
        help="list what would be uploaded and check the card, upload nothing",
    )


def run(args: argparse.Namespace) -> int:
    from ..hub.push import plan_push, push_model_folder

    plan = plan_push(args.model_dir, args.repo_id)  # never publish weights that differ from what was saved
    print(
        f"{'would upload' if args.dry_run else 'uploading'} to {args.repo_id} ({'private' if args.private else 'public'}):"
    )
    for path in plan.files:
        print(f"  {path.name}  ({path.stat().st_size:,} bytes)")
    print(
        f"model card: library_name={plan.card['library_name']}, pipeline_tag={plan.card['pipeline_tag']}, "
        f"tags={plan.card['tags']}"
    )
    if args.dry_run:
        return 0
    print(f"done: {push_model_folder(plan, private=args.private)}")
    return 0
