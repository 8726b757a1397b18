"""`lareid evaluate`: Rank-k, mAP and mINP of a model on one or several datasets (one row each: cross-domain)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..utils.errors import InvalidInputError
from ._choices import PROTOCOLS
from ._common import add_dataset_arguments, encoder_from_arguments, load_model_and_processor, write_json

DESCRIPTION = "Evaluate a model on query/gallery splits: Rank-1/5/10, mAP, mINP. Several datasets give one row each."
EXAMPLE = "lareid evaluate ./my-model --dataset market1501 course --data_dir ~/Market-1501 ~/course --rerank"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a saved model folder or Hub id")
    add_dataset_arguments(parser, multiple=True)
    parser.add_argument(
        "--protocol",
        default="auto",
        choices=["auto", *PROTOCOLS],
        help="which gallery images count for a query (no-camera: data without camera ids; auto: "
        "market1501 where camera ids are known, else no-camera)",
    )
    parser.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3)")
    parser.add_argument(
        "--output",
        "--output_json",
        "--output-json",
        dest="output",
        default=None,
        metavar="FILE.json",
        help="also write the results as JSON to this file (default: print them only)",
    )


def run(args: argparse.Namespace) -> int:
    import contextlib

    from ..embedding.sharding import init_from_launcher, is_main_process
    from ..utils.output_guard import claim_outputs

    if len(args.dataset) != len(args.data_dir):
        raise InvalidInputError(
            f"got {len(args.dataset)} --dataset names but {len(args.data_dir)} --data_dir folders: give one folder per dataset."
        )
    distributed = init_from_launcher()  # under torchrun: each rank embeds its shard, rank 0 computes the metrics
    output = contextlib.nullcontext()
    if args.output and is_main_process():  # claimed before the model loads: a user's file is never replaced
        output = claim_outputs([args.output], fix="pass another --output file")
    with output:
        return _evaluate(args, distributed)


def _evaluate(args: argparse.Namespace, distributed: bool) -> int:
    from ..data import load_reid_dataset
    from ..embedding.sharding import is_main_process, launcher_device, main_process_first
    from ..evaluation.results_table import format_results_table
    from ..tasks.evaluate import evaluate_model

    model, image_processor = load_model_and_processor(args.model, device=launcher_device())
    encoder = encoder_from_arguments(model, image_processor, args)  # one encoder (one export) for every dataset
    rows = []
    for name, data_dir in zip(args.dataset, args.data_dir):
        with main_process_first():  # rank 0 builds the dataset cache, the others read it
            data = load_reid_dataset(name, data_dir=data_dir, splits=["query", "gallery"])
        result = evaluate_model(
            encoder,
            data["query"],
            data["gallery"],
            protocol=args.protocol,
            evaluate_options={"rerank": args.rerank},
            shard="auto" if distributed else None,
        )
        rows.append({"name": f"{name} ({Path(data_dir).name})", "data_dir": str(data_dir), **result.metrics})
    if not is_main_process():
        return 0
    print(format_results_table(rows))
    if args.output:
        write_json(
            args.output, {"model": str(args.model), "protocol": args.protocol, "rerank": args.rerank, "results": rows}
        )
        print(f"wrote {args.output}")
    return 0
