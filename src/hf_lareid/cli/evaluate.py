"""`lareid evaluate`: Rank-k, mAP and mINP of a model on one or several datasets (one row each: cross-domain)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._choices import PROTOCOLS
from ._common import add_dataset_arguments, load_model_and_processor, write_json

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
    parser.add_argument("--output_json", "--output-json", default="lareid-eval.json", help="where to write the results")


def run(args: argparse.Namespace) -> int:
    from ..data import load_reid_dataset
    from ..distributed import init_from_launcher, is_main_process, launcher_device, main_process_first
    from ..query_gallery_evaluation import evaluate_model
    from ..runtimes import make_embedder
    from .results_table import format_results_table

    if len(args.dataset) != len(args.data_dir):
        raise ValueError(
            f"got {len(args.dataset)} --dataset names but {len(args.data_dir)} --data_dir folders: give one folder per dataset."
        )
    distributed = init_from_launcher()  # under torchrun: each rank embeds its shard, rank 0 computes the metrics
    model, image_processor = load_model_and_processor(args.model, device=launcher_device())
    runtime = make_embedder(model, args.runtime, True if args.bf16 else "auto")  # one export for every dataset
    rows = []
    for name, data_dir in zip(args.dataset, args.data_dir):
        with main_process_first():  # rank 0 builds the dataset cache, the others read it
            data = load_reid_dataset(name, data_dir=data_dir, splits=["query", "gallery"])
        result = evaluate_model(
            model,
            data["query"],
            data["gallery"],
            image_processor=image_processor,
            batch_size=args.batch_size,
            flip=args.flip,
            bf16=True if args.bf16 else "auto",
            protocol=args.protocol,
            rerank=args.rerank,
            shard="auto" if distributed else None,
            runtime=runtime,
        )
        rows.append({"name": f"{name} ({Path(data_dir).name})", "data_dir": str(data_dir), **result.metrics})
    if not is_main_process():
        return 0
    print(format_results_table(rows))
    write_json(
        args.output_json, {"model": str(args.model), "protocol": args.protocol, "rerank": args.rerank, "results": rows}
    )
    print(f"wrote {args.output_json}")
    return 0
