"""`lareid convert-original`: original LA-Transformer checkpoints -> a folder `from_pretrained` loads."""

from __future__ import annotations

import argparse

from ._common import add_command


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "convert-original",
        "Convert a state dict saved by the original LA-Transformer code (timm ViT-B/16) into this package's format.",
        "lareid convert-original net_best.pth ./la-transformer-market --lambda 8",
    )
    parser.add_argument("checkpoint", help="the original .pth state dict (read with weights_only=True)")
    parser.add_argument("output_dir", help="folder to write model.safetensors, config.json, preprocessor_config.json")
    parser.add_argument("--lambda", dest="lambda_code", type=float, default=8.0,
                        help="the ORIGINAL code's lambda (its blend is (G + lambda*Q)/(1+lambda)); stored as 1/lambda")
    parser.add_argument("--num-labels", "--num_labels", dest="num_labels", default="auto",
                        help="number of classes, or 'auto' to read it from the checkpoint")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..convert_original import convert_original_checkpoint

    num_labels = None if args.num_labels == "auto" else int(args.num_labels)
    convert_original_checkpoint(args.checkpoint, args.output_dir, lambda_code=args.lambda_code, num_labels=num_labels)
    print(f"converted {args.checkpoint} -> {args.output_dir}")
    return 0
