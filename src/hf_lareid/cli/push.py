"""`lareid push`: upload a trained model folder (weights, config, image processor, model card) to the Hub."""

from __future__ import annotations

import argparse
from pathlib import Path

REQUIRED_FILES = ("model.safetensors", "config.json", "preprocessor_config.json", "README.md")
OPTIONAL_FILES = ("training_args.json", "metrics.json")
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


def files_to_upload(model_dir: str | Path) -> list[Path]:
    """The files `lareid push` uploads, in a fixed order; a clear error names any missing required file."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model folder {str(model_dir)!r} does not exist.")
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{str(model_dir)!r} lacks {missing}: train with `lareid train --output_dir {model_dir}` (it writes all of them)."
        )
    return [model_dir / name for name in REQUIRED_FILES + OPTIONAL_FILES if (model_dir / name).is_file()]


def run(args: argparse.Namespace) -> int:
    from ..hub.modelcard import check_model_card
    from ..utils.integrity import verify_model_weights

    files = files_to_upload(args.model_dir)
    verify_model_weights(args.model_dir)  # never publish weights that differ from what was saved
    metadata = check_model_card(Path(args.model_dir) / "README.md")
    print(
        f"{'would upload' if args.dry_run else 'uploading'} to {args.repo_id} ({'private' if args.private else 'public'}):"
    )
    for path in files:
        print(f"  {path.name}  ({path.stat().st_size:,} bytes)")
    print(
        f"model card: library_name={metadata['library_name']}, pipeline_tag={metadata['pipeline_tag']}, tags={metadata['tags']}"
    )
    if args.dry_run:
        return 0
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(args.repo_id, private=args.private, exist_ok=True)
    api.upload_folder(
        repo_id=args.repo_id,
        folder_path=args.model_dir,
        allow_patterns=[path.name for path in files],
        commit_message="Upload LA-Transformer model (hf-lareid)",
    )
    print(f"done: https://huggingface.co/{args.repo_id}")
    return 0
