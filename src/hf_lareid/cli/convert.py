"""`lareid convert-original`: original LA-Transformer checkpoints -> a folder `from_pretrained` loads."""

from __future__ import annotations

import argparse

DESCRIPTION = (
    "Convert a state dict saved by the original LA-Transformer code (timm ViT-B/16) into this package's format."
)
EXAMPLE = "lareid convert-original net_best.pth ./la-transformer-market --lambda 8"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..convert_original import add_conversion_arguments

    add_conversion_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..convert_original import convert_original_checkpoint

    convert_original_checkpoint(args.checkpoint, args.out_dir, lambda_code=args.lambda_code, num_labels=args.num_labels)
    print(f"converted {args.checkpoint} -> {args.out_dir}")
    return 0
