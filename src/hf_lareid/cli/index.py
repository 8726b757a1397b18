"""`lareid index`: embed a dataset split (the gallery by default) into a FAISS or Qdrant gallery index (`lareid search` queries it)."""

from __future__ import annotations

import argparse

from ..utils.errors import InvalidInputError
from ._choices import INDEX_TYPES
from ._common import (
    add_dataset_arguments,
    encoder_from_arguments,
    load_model_and_processor,
    positive_int_argument,
    rate_argument,
    threshold_argument,
)

DESCRIPTION = (
    "Embed a dataset split (the gallery by default) and store it in a FAISS (or Qdrant) gallery index. An interrupted "
    "build resumes: images already in --index_dir are skipped. Runs on several processes or machines under "
    "torchrun / accelerate launch --multi_gpu."
)
EXAMPLE = "lareid index ./my-model --dataset market1501 --data_dir ~/Market-1501 --index_dir ./market-index"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="a saved model folder or Hub id (recorded in the index)")
    add_dataset_arguments(parser, multiple=False)
    for action in parser._actions:  # not needed by --remove / --verify; building checks them in run
        if action.dest in ("dataset", "data_dir"):
            action.required = False
    parser.add_argument("--split", default="gallery", help="which split to index (default: gallery)")
    parser.add_argument("--index_dir", "--index-dir", required=True, help="folder to write the index to")
    parser.add_argument(
        "--index_type",
        "--index-type",
        default="flat",
        choices=list(INDEX_TYPES),
        help="flat (exact), or ivf / ivfpq / ivfpq_refine (compressed, re-ranked: high recall) / hnsw "
        "(approximate, for large galleries)",
    )
    parser.add_argument(
        "--backend",
        default="faiss",
        choices=["faiss", "qdrant"],
        help="faiss (one machine, compressed types, fastest; default) or qdrant (a Qdrant collection: "
        "embedded in the index folder, or a server / cluster with --qdrant_url; needs the "
        "'qdrant' extra)",
    )
    qdrant = parser.add_argument_group("Qdrant backend (--backend qdrant)")
    qdrant.add_argument(
        "--qdrant_url",
        "--qdrant-url",
        default=None,
        metavar="URL",
        help="a Qdrant server or cluster, e.g. http://qdrant:6333 (default: embedded storage)",
    )
    qdrant.add_argument(
        "--qdrant_path",
        "--qdrant-path",
        default=None,
        metavar="DIR",
        help="embedded Qdrant storage folder (default: INDEX_DIR/qdrant_storage)",
    )
    qdrant.add_argument(
        "--qdrant_collection",
        "--qdrant-collection",
        default="hf_lareid_gallery",
        metavar="NAME",
        help="the Qdrant collection of this gallery (default: hf_lareid_gallery)",
    )
    qdrant.add_argument(
        "--qdrant_api_key_env",
        "--qdrant-api-key-env",
        default="QDRANT_API_KEY",
        metavar="VAR",
        help="environment variable holding the server's API key (only its name is saved)",
    )
    parser.add_argument(
        "--checkpoint_every",
        "--checkpoint-every",
        type=positive_int_argument,
        default=5000,
        help="save the index every N added images, so an interrupted build can resume",
    )
    parser.add_argument(
        "--threshold",
        type=threshold_argument,
        default=None,
        help="same-person similarity threshold, set by hand (default: the model config's calibration)",
    )
    parser.add_argument(
        "--calibrate_on",
        "--calibrate-on",
        default=None,
        metavar="SPLIT",
        help="calibrate the same-person threshold on this split with identities (e.g. query) and "
        "store the calibration in the index",
    )
    parser.add_argument(
        "--target_false_match_rate",
        "--target-false-match-rate",
        type=rate_argument,
        default=1e-3,
        help="false-match rate the calibration aims at (default: 0.001)",
    )
    erasure = parser.add_argument_group(
        "retention and erasure (no model or data set needed)",
        "lareid index --index_dir D --remove --person_ids 17 42 | --paths P ... | --camera_ids 3 | --older_than 30d: "
        "remove the entries matching every criterion given, atomically; --verify checks every file's full SHA-256.",
    )
    erasure.add_argument("--remove", action="store_true", help="remove entries from --index_dir instead of building")
    erasure.add_argument(
        "--person_ids", "--person-ids", type=int, nargs="+", metavar="ID", help="remove these people's entries"
    )
    erasure.add_argument(
        "--paths", nargs="+", metavar="PATH", help="remove the entries with these image paths (as stored)"
    )
    erasure.add_argument(
        "--camera_ids", "--camera-ids", type=int, nargs="+", metavar="CAM", help="remove these cameras' entries"
    )
    erasure.add_argument(
        "--older_than",
        "--older-than",
        metavar="WHEN",
        help="remove entries added before an ISO 8601 UTC date-time or a duration ago (30d, 12h, 2w)",
    )
    erasure.add_argument(
        "--verify",
        action="store_true",
        help="check the full SHA-256 of every file of --index_dir (every load checks sizes and a quick hash only)",
    )


def run(args: argparse.Namespace) -> int:
    import contextlib

    from ..embedding.sharding import init_from_launcher, resolve_shard
    from ..retrieval import check_index_target
    from ..utils.io import folder_lock

    criteria = {name: getattr(args, name) for name in ("person_ids", "paths", "camera_ids", "older_than")}
    if any(value is not None for value in criteria.values()) and not args.remove:
        raise InvalidInputError(
            "--person_ids / --paths / --camera_ids / --older_than select entries to remove: add --remove."
        )
    if not (args.remove or args.verify) and not (args.model and args.dataset and args.data_dir):
        raise InvalidInputError(
            "building an index needs a model, --dataset and --data_dir (or use --remove / --verify)."
        )
    if args.remove or args.verify:
        check_index_target(args.index_dir)
        with folder_lock(args.index_dir):
            return _edit_index(args, criteria)
    distributed = init_from_launcher()  # under torchrun / accelerate launch: join the process group
    rank, world_size = resolve_shard("auto") if distributed else (0, 1)
    if rank == 0:  # before loading anything: a model or photo folder is never replaced
        check_index_target(args.index_dir)
    # Only rank 0 writes; a second `lareid index` on the same folder stops here with one line.
    with folder_lock(args.index_dir) if rank == 0 else contextlib.nullcontext():
        return _build_index(args, rank, world_size)


def _edit_index(args: argparse.Namespace, criteria: dict) -> int:
    """`--verify` and/or `--remove`: load (fully verified with --verify), remove, save atomically with new checksums."""
    from ..retrieval import GalleryIndex

    index = GalleryIndex.load(args.index_dir, verify=args.verify)
    if args.verify:
        if index.backend == "qdrant":  # only the config is a file of ours
            print(
                f"{args.index_dir}: its config matches its SHA-256; the {len(index)} vectors live in Qdrant, "
                "which keeps its own checksums"
            )
        else:
            print(f"{args.index_dir}: every file matches its SHA-256 ({len(index)} images)")
    if not args.remove:
        return 0
    removed = index.remove(**criteria)
    if removed:
        index.save(args.index_dir)
    print(f"removed {removed} entries; {args.index_dir} holds {len(index)}")
    return 0


def _build_index(args: argparse.Namespace, rank: int, world_size: int) -> int:
    from ..data import data_root, load_reid_dataset
    from ..embedding.sharding import launcher_device, main_process_first
    from ..retrieval import GalleryIndex, QdrantGalleryIndex
    from ..tasks.index import index_split
    from .index_shards import build_from_shards, shard_store

    model, image_processor = load_model_and_processor(args.model, device=launcher_device())
    with main_process_first():  # rank 0 builds the dataset cache, the others read it
        data = load_reid_dataset(args.dataset, data_dir=args.data_dir)
    if args.split not in data:
        raise InvalidInputError(
            f"{args.data_dir} has no {args.split!r} split (it has {sorted(data)}): pick one with --split."
        )
    split = data[args.split]
    encoder = encoder_from_arguments(model, image_processor, args)
    index = None
    if rank == 0:  # only rank 0 calibrates, opens and writes the index
        calibration = _index_calibration(args, encoder, data)
        if args.backend == "qdrant":
            open_index, backend_options = (
                QdrantGalleryIndex.load_or_create,
                dict(
                    url=args.qdrant_url,
                    path=args.qdrant_path,
                    collection_name=args.qdrant_collection,
                    api_key_env=args.qdrant_api_key_env,
                ),
            )
        else:
            open_index, backend_options = GalleryIndex.load_or_create, dict(index_type=args.index_type)
        index = open_index(
            args.index_dir,
            model.config.embedding_dim,
            **backend_options,
            model_reference=str(args.model),
            **encoder.provenance.index_fields(),
            data_dir=str(data_root(args.data_dir)),  # the split's `path` column is relative to it
            dataset=args.dataset,  # `lareid search` reads query identities with its file-name scheme
        )
        if calibration is not None:
            index.set_verification_calibration(calibration)
        elif args.threshold is not None or not len(index):  # a resumed build keeps its threshold unless given one
            index.set_verification_threshold(
                model.config.verification_threshold if args.threshold is None else args.threshold
            )
    if world_size > 1 or shard_store(args.index_dir).is_dir():  # several processes, or a killed run of several
        added = build_from_shards(
            index,
            encoder,
            split,
            index_dir=args.index_dir,
            rank=rank,
            world_size=world_size,
            checkpoint_every=args.checkpoint_every,
        )
        if rank != 0:
            return 0
    else:
        if len(index):
            print(f"resuming {args.index_dir}: {len(index)} images indexed")
        added = index_split(
            index, encoder, split, checkpoint_dir=args.index_dir, checkpoint_every=args.checkpoint_every
        )
    if len(index) == 0:
        raise InvalidInputError(f"the {args.split!r} split of {args.data_dir} has no images: nothing to index.")
    print(f"indexed {added} new images; {args.index_dir} holds {len(index)} ({index.index_type}, dim {index.dim})")
    return 0


def _index_calibration(args: argparse.Namespace, encoder, data):
    """The calibration to store: `--calibrate_on SPLIT` computes one; else the model config's, unless `--threshold`."""
    from ..evaluation import ThresholdCalibration
    from ..tasks.evaluate import calibrate_model

    if args.calibrate_on is None:
        recorded = encoder.model.config.verification_calibration
        return ThresholdCalibration.from_dict(recorded) if recorded and args.threshold is None else None
    if args.threshold is not None:
        raise InvalidInputError("give either --threshold (set by hand) or --calibrate_on SPLIT (calibrated), not both.")
    if args.calibrate_on not in data:
        raise InvalidInputError(
            f"{args.data_dir} has no {args.calibrate_on!r} split to calibrate on (it has {sorted(data)}): pick one "
            "with --calibrate_on."
        )
    calibration = calibrate_model(
        encoder,
        data[args.calibrate_on],
        f"{args.dataset} {args.calibrate_on} split of {args.data_dir}",
        target_false_match_rate=args.target_false_match_rate,
    )
    print(
        f"calibrated on {calibration.calibrated_on}\n  same person when cosine > {calibration.threshold:.4f} "
        f"(false-match rate {calibration.false_match_rate:.2g}, target {calibration.target_false_match_rate:.2g}; "
        f"true-match rate {calibration.true_match_rate:.1%})"
    )
    return calibration
