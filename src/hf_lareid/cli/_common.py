"""What several subcommands share: dataset and runtime arguments, argument types, loading a model with its image
processor, writing JSON."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ._choices import AUTO_CPU_ORDER, DATASETS, RUNTIMES


def add_dataset_arguments(parser: argparse.ArgumentParser, multiple: bool) -> None:
    """`--dataset NAME` and `--data_dir DIR` (several of each, paired in order, where `multiple`)."""
    nargs = "+" if multiple else None
    parser.add_argument("--dataset", nargs=nargs, required=True, choices=DATASETS, help="dataset loader name")
    parser.add_argument(
        "--data_dir", "--data-dir", nargs=nargs, required=True, help="dataset folder (one per --dataset)"
    )
    parser.add_argument("--batch_size", "--batch-size", type=int, default=64, help="images per forward pass")
    parser.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    parser.add_argument(
        "--bf16", action="store_true", help="bf16 autocast (default: only where the CPU/GPU runs it fast)"
    )
    add_runtime_argument(parser)


def add_runtime_argument(parser: argparse.ArgumentParser) -> None:
    """`--runtime auto|torch|onnxruntime|openvino`: what embeds the images (see `hf_lareid.embedding.backends`)."""
    cpu_order = " > ".join(AUTO_CPU_ORDER)
    parser.add_argument(
        "--runtime",
        default="auto",
        choices=["auto", *RUNTIMES],
        help=f"what embeds the images (default auto: the first installed of {cpu_order} on a CPU in fp32; "
        "PyTorch on a GPU or with bf16)",
    )


def threshold_argument(text: str) -> float:
    """argparse type of `--threshold`: a finite cosine similarity in [-1, 1] (a usage error otherwise)."""
    from ..evaluation.threshold import check_threshold

    return _checked_argument(text, lambda value: check_threshold(value, "the threshold"))


def rate_argument(text: str) -> float:
    """argparse type of a rate strictly between 0 and 1 (`--target_false_match_rate`)."""
    from ..evaluation.threshold import check_rate

    return _checked_argument(text, lambda value: check_rate(value, "the rate", open_interval=True))


def positive_int_argument(text: str) -> int:
    """argparse type of a count or size that must be a whole number >= 1 (`--top_k`, `--checkpoint_every`)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _checked_argument(text: str, check) -> float:
    try:
        return check(float(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).rstrip(".")) from None


def load_model_and_processor(model_ref: str | os.PathLike, device: str | None = None):
    """An `LATransformerForReID` in eval mode and its image processor (see `hf_lareid.embedding.loading`)."""
    from ..embedding.loading import load_model_and_processor as load

    return load(model_ref, device)


def encoder_from_arguments(model: Any, image_processor: Any, args: argparse.Namespace) -> Any:
    """The [`ReIDEncoder`] of `--runtime`, `--bf16`, `--flip` and `--batch_size` (see `add_dataset_arguments`)."""
    from ..embedding import ReIDEncoder, bf16_option

    return ReIDEncoder(
        model,
        image_processor,
        runtime=args.runtime,
        bf16=bf16_option(args.bf16),
        flip=args.flip,
        batch_size=args.batch_size,
    )


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Writes JSON atomically (`utils.io.atomic_write_text`) and returns the path."""
    from ..utils.io import atomic_write_text

    atomic_write_text(path, json.dumps(payload, indent=2, default=_to_builtin) + "\n")
    return Path(path)


def _to_builtin(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
