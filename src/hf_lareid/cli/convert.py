"""`lareid convert-original`: original LA-Transformer checkpoints -> a folder `from_pretrained` loads."""

from __future__ import annotations

import argparse

DESCRIPTION = (
    "Convert a state dict saved by the original LA-Transformer code (timm ViT-B/16) into this package's format."
)
EXAMPLE = "lareid convert-original net_best.pth ./la-transformer-market --lambda 8"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The converter's arguments."""
    parser.add_argument(
        "checkpoint", help="the .pth state dict saved by the original code (read with weights_only=True)"
    )
    parser.add_argument("out_dir", help="output folder (new, empty, or an earlier conversion)")
    parser.add_argument(
        "--lambda",
        dest="lambda_code",
        type=float,
        default=8.0,
        help="the ORIGINAL code's lambda, weight of the local tokens in (G + lambda*Q)/(1 + lambda) (default 8); "
        "stored as the paper's lambda_global = 1/lambda",
    )
    parser.add_argument(
        "--num-labels",
        "--num_labels",
        dest="num_labels",
        type=_num_labels,
        default=None,
        help="number of classes, or 'auto' to read it from the classifiers (default)",
    )


def _num_labels(value: str) -> int | None:
    if value == "auto":
        return None
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise argparse.ArgumentTypeError(f"must be 'auto' or a positive integer, got {value!r}")


def run(args: argparse.Namespace) -> int:
    from ..convert_original import convert_original_checkpoint

    convert_original_checkpoint(args.checkpoint, args.out_dir, lambda_code=args.lambda_code, num_labels=args.num_labels)
    print(f"converted {args.checkpoint} -> {args.out_dir}")
    return 0
