"""`lareid index`: embed a dataset split (the gallery by default) into a FAISS gallery index (`lareid search` queries it)."""

from __future__ import annotations

import argparse

from ._common import add_dataset_arguments, load_model_and_processor

DESCRIPTION = (
    "Embed a dataset split (the gallery by default) and store it in a FAISS gallery index. An interrupted "
    "build resumes: images already in --index_dir are skipped."
)
EXAMPLE = "lareid index ./my-model --dataset market1501 --data_dir ~/Market-1501 --index_dir ./market-index"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..retrieval.index import INDEX_TYPES

    parser.add_argument("model", help="a saved model folder or Hub id (recorded in the index)")
    add_dataset_arguments(parser, multiple=False)
    parser.add_argument("--split", default="gallery", help="which split to index (default: gallery)")
    parser.add_argument("--index_dir", "--index-dir", required=True, help="folder to write the index to")
    parser.add_argument("--index_type", "--index-type", default="flat", choices=list(INDEX_TYPES),
                        help="flat (exact), or ivf / ivfpq / hnsw (approximate, for large galleries)")
    parser.add_argument("--checkpoint_every", "--checkpoint-every", type=int, default=5000,
                        help="save the index every N added images, so an interrupted build can resume")
    parser.add_argument("--threshold", type=float, default=None,
                        help="same-person similarity threshold (default: the model config's verification_threshold)")


def run(args: argparse.Namespace) -> int:
    from ..file_utils import folder_lock
    from ..retrieval import check_index_target

    check_index_target(args.index_dir)  # before loading anything: a model or photo folder is never replaced
    with folder_lock(args.index_dir):  # a second `lareid index` on the same folder stops here with one line
        return _build_index(args)


def _build_index(args: argparse.Namespace) -> int:
    from ..data import data_root, load_reid_dataset
    from ..features import embedding_settings, iter_features, model_fingerprint, resolve_bf16, runtime_settings
    from ..retrieval import GalleryIndex

    model, image_processor = load_model_and_processor(args.model)
    data = load_reid_dataset(args.dataset, data_dir=args.data_dir)
    if args.split not in data:
        raise ValueError(f"{args.data_dir} has no {args.split!r} split (it has {sorted(data)}): pick one with --split.")
    split = data[args.split]
    threshold = args.threshold if args.threshold is not None else model.config.verification_threshold
    device = next(model.parameters()).device
    bf16 = resolve_bf16(True if args.bf16 else "auto", device)
    index = GalleryIndex.load_or_create(
        args.index_dir, model.config.embedding_dim, index_type=args.index_type, model_reference=str(args.model),
        model_fingerprint=model_fingerprint(model), verification_threshold=threshold,
        embedding_settings=embedding_settings(image_processor, args.flip), runtime_settings=runtime_settings(bf16, device),
        data_dir=str(data_root(args.data_dir)),  # the split's `path` column is relative to it
    )
    if len(index):  # resume: embed only the images the index does not hold yet
        indexed = {index.resolve_path(path) for path in index.indexed_paths}  # also an index of absolute paths
        split = split.select([i for i, path in enumerate(split["path"]) if index.resolve_path(path) not in indexed])
        print(f"resuming {args.index_dir}: {len(index)} images indexed, {len(split)} to go")
    batches = iter_features(
        model, split, batch_size=args.batch_size, flip=args.flip, bf16=bf16, image_processor=image_processor,
    )
    added = index.add_batches(batches, checkpoint_dir=args.index_dir, checkpoint_every=args.checkpoint_every)
    if len(index) == 0:
        raise ValueError(f"the {args.split!r} split of {args.data_dir} has no images: nothing to index.")
    print(f"indexed {added} new images; {args.index_dir} holds {len(index)} ({index.index_type}, dim {index.dim})")
    return 0
