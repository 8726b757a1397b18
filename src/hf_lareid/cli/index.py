"""`lareid index` builds a FAISS gallery index from a dataset split; `lareid search` queries it with images."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_command, add_dataset_arguments, load_model_and_processor, write_json


def add_parser(subparsers) -> None:
    """Registers both subcommands: `index` and `search`."""
    _add_index_parser(subparsers)
    _add_search_parser(subparsers)


def _add_index_parser(subparsers) -> None:
    from ..retrieval.index import INDEX_TYPES

    parser = add_command(
        subparsers,
        "index",
        "Embed a dataset split (the gallery by default) and store it in a FAISS gallery index. An interrupted "
        "build resumes: images already in --index_dir are skipped.",
        "lareid index ./my-model --dataset market1501 --data_dir ~/Market-1501 --index_dir ./market-index",
    )
    parser.add_argument("model", nargs="?", help="a saved model folder or Hub id (recorded in the index)")
    add_dataset_arguments(parser, multiple=False)
    for action in parser._actions:  # not needed by --remove / --verify; building checks them in run_index
        if action.dest in ("dataset", "data_dir"):
            action.required = False
    parser.add_argument("--split", default="gallery", help="which split to index (default: gallery)")
    parser.add_argument("--index_dir", "--index-dir", required=True, help="folder to write the index to")
    parser.add_argument("--index_type", "--index-type", default="flat", choices=list(INDEX_TYPES),
                        help="flat (exact), or ivf / ivfpq / ivfpq_refine (compressed, re-ranked: high recall) / hnsw "
                             "(approximate, for large galleries)")
    parser.add_argument("--checkpoint_every", "--checkpoint-every", type=int, default=5000,
                        help="save the index every N added images, so an interrupted build can resume")
    parser.add_argument("--threshold", type=float, default=None,
                        help="same-person similarity threshold (default: the model config's verification_threshold)")
    erasure = parser.add_argument_group(
        "retention and erasure (no model or data set needed)",
        "lareid index --index_dir D --remove --person_ids 17 42 | --paths P ... | --camera_ids 3 | --older_than 30d: "
        "remove the entries matching every criterion given, atomically; --verify checks every file's full SHA-256.",
    )
    erasure.add_argument("--remove", action="store_true", help="remove entries from --index_dir instead of building")
    erasure.add_argument("--person_ids", "--person-ids", type=int, nargs="+", metavar="ID",
                         help="remove these people's entries")
    erasure.add_argument("--paths", nargs="+", metavar="PATH", help="remove the entries with these image paths (as stored)")
    erasure.add_argument("--camera_ids", "--camera-ids", type=int, nargs="+", metavar="CAM",
                         help="remove these cameras' entries")
    erasure.add_argument("--older_than", "--older-than", metavar="WHEN",
                         help="remove entries added before an ISO 8601 UTC date-time or a duration ago (30d, 12h, 2w)")
    erasure.add_argument("--verify", action="store_true",
                         help="check the full SHA-256 of every file of --index_dir (every load checks sizes and a "
                              "quick hash only)")
    parser.set_defaults(func=run_index)


def _add_search_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "search",
        "Find the gallery images most similar to each query image in an index built by `lareid index`.",
        "lareid search --index_dir ./market-index query/0001_c1s1_001051_00.jpg --top_k 5 --picture ranks.png",
    )
    parser.add_argument("images", nargs="+", help="query image files")
    parser.add_argument("--index_dir", "--index-dir", required=True, help="a folder written by `lareid index`")
    parser.add_argument("--model", default=None,
                        help="the query model (default: the one the index records); a different model is refused")
    parser.add_argument("--top_k", "--top-k", type=int, default=10, help="hits per query")
    parser.add_argument("--picture", default=None, help="also draw the ranked lists into this PNG")
    parser.add_argument("--output_json", "--output-json", default=None, help="also write the hits as JSON")
    parser.add_argument("--flip", action="store_true", help="flip test-time augmentation (use it if the index did)")
    parser.set_defaults(func=run_search)


def run_index(args: argparse.Namespace) -> int:
    from ..file_utils import folder_lock
    from ..retrieval import check_index_target

    criteria = {name: getattr(args, name) for name in ("person_ids", "paths", "camera_ids", "older_than")}
    if any(value is not None for value in criteria.values()) and not args.remove:
        raise ValueError("--person_ids / --paths / --camera_ids / --older_than select entries to remove: add --remove.")
    if not (args.remove or args.verify) and not (args.model and args.dataset and args.data_dir):
        raise ValueError("building an index needs a model, --dataset and --data_dir (or use --remove / --verify).")
    check_index_target(args.index_dir)  # before loading anything: a model or photo folder is never replaced
    with folder_lock(args.index_dir):  # a second `lareid index` on the same folder stops here with one line
        if args.remove or args.verify:
            return _edit_index(args, criteria)
        return _build_index(args)


def _edit_index(args: argparse.Namespace, criteria: dict) -> int:
    """`--verify` and/or `--remove`: load (fully verified with --verify), remove, save atomically with new checksums."""
    from ..retrieval import GalleryIndex

    index = GalleryIndex.load(args.index_dir, verify=args.verify)
    if args.verify:
        print(f"{args.index_dir}: every file matches its SHA-256 ({len(index)} images)")
    if not args.remove:
        return 0
    removed = index.remove(**criteria)
    if removed:
        index.save(args.index_dir)
    print(f"removed {removed} entries; {args.index_dir} holds {len(index)}")
    return 0


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


def run_search(args: argparse.Namespace) -> int:
    from ..features import embedding_settings, extract_features, model_fingerprint, resolve_bf16, runtime_settings
    from ..retrieval import GalleryIndex

    index = GalleryIndex.load(args.index_dir)
    model_ref = args.model or index.model_reference
    if model_ref is None:
        raise ValueError(f"the index in {args.index_dir} records no model: name the query model with --model.")
    missing = [image for image in args.images if not Path(image).is_file()]
    if missing:
        raise FileNotFoundError(f"query image {missing[0]!r} does not exist: pass image files to search with.")
    model, image_processor = load_model_and_processor(model_ref)
    index.check_fingerprint(model_fingerprint(model))
    index.check_embedding_settings(embedding_settings(image_processor, args.flip))
    device = next(model.parameters()).device
    bf16 = resolve_bf16("auto", device)
    queries = extract_features(model, list(args.images), flip=args.flip, bf16=bf16, image_processor=image_processor, progress=False)
    hits = index.search(queries.embeddings, k=args.top_k, runtime_settings=runtime_settings(bf16, device))
    results = []
    for row, image in enumerate(args.images):
        print(f"query {image}")
        matches = []
        for rank, gallery_row in enumerate(hits.indices[row]):
            match = {"rank": rank + 1, "score": float(hits.scores[row, rank]), "index": int(gallery_row)}
            for name in ("person_ids", "camera_ids"):
                if getattr(hits, name) is not None:
                    match[name[:-1]] = int(getattr(hits, name)[row, rank])
            if hits.paths is not None:
                match["path"] = index.resolve_path(hits.paths[row][rank])
            if hits.same_person is not None:
                match["same_person"] = bool(hits.same_person[row, rank])
            matches.append(match)
            print("  " + "  ".join(f"{key}={value:.4f}" if isinstance(value, float) else f"{key}={value}"
                                   for key, value in match.items() if key != "index"))
        results.append({"query": image, "matches": matches})
    if args.output_json:
        write_json(args.output_json, {"index_dir": str(args.index_dir), "model": str(model_ref), "results": results})
        print(f"wrote {args.output_json}")
    if args.picture:
        _draw_ranked_lists(args.images, index, hits.indices, args.picture, args.top_k)
        print(f"wrote {args.picture}")
    return 0


def _draw_ranked_lists(images: list[str], index, ranked, path: str, top_k: int) -> None:
    """The query images and their hits; identities come from Market-1501-style file names where they parse."""
    from ..data.market1501 import parse_market1501_name
    from .pictures import plot_ranked_lists

    if index.paths is None or index.person_ids is None:
        raise ValueError("this index stores no image paths or person ids, so --picture cannot draw the gallery images.")
    query_ids = []
    for image in images:
        try:
            query_ids.append(parse_market1501_name(image)[0])
        except ValueError:
            query_ids.append(None)  # unknown identity: every hit is framed red
    gallery_paths = [index.resolve_path(gallery_path) for gallery_path in index.paths]
    plot_ranked_lists(
        images, query_ids, gallery_paths, index.person_ids, ranked, path, top_k=top_k,
        query_titles=[Path(image).name for image in images],
    )
