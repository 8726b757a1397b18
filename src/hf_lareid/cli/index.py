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
    parser.add_argument("model", help="a saved model folder or Hub id (recorded in the index)")
    add_dataset_arguments(parser, multiple=False)
    parser.add_argument("--split", default="gallery", help="which split to index (default: gallery)")
    parser.add_argument("--index_dir", "--index-dir", required=True, help="folder to write the index to")
    parser.add_argument("--index_type", "--index-type", default="flat", choices=list(INDEX_TYPES),
                        help="flat (exact), or ivf / ivfpq / hnsw (approximate, for large galleries)")
    parser.add_argument("--checkpoint_every", "--checkpoint-every", type=int, default=5000,
                        help="save the index every N added images, so an interrupted build can resume")
    parser.add_argument("--threshold", type=float, default=None,
                        help="same-person similarity threshold, set by hand (default: the model config's calibration)")
    parser.add_argument("--calibrate_on", "--calibrate-on", default=None, metavar="SPLIT",
                        help="calibrate the same-person threshold on this split with identities (e.g. query) and "
                             "store the calibration in the index")
    parser.add_argument("--target_false_match_rate", "--target-false-match-rate", type=float, default=1e-3,
                        help="false-match rate the calibration aims at (default: 0.001)")
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
    parser.add_argument("--query_camera", "--query-camera", type=int, nargs="+", default=None, metavar="CAMERA",
                        help="camera id of the queries (one, or one per image): gallery images from that camera are "
                             "left out, as the re-ID protocol does")
    parser.set_defaults(func=run_search)


def run_index(args: argparse.Namespace) -> int:
    from ..file_utils import folder_lock
    from ..retrieval import check_index_target

    check_index_target(args.index_dir)  # before loading anything: a model or photo folder is never replaced
    with folder_lock(args.index_dir):  # a second `lareid index` on the same folder stops here with one line
        return _build_index(args)


def _build_index(args: argparse.Namespace) -> int:
    from ..data import load_reid_dataset
    from ..features import embedding_settings, iter_features, model_fingerprint, resolve_bf16, runtime_settings
    from ..retrieval import GalleryIndex

    model, image_processor = load_model_and_processor(args.model)
    data = load_reid_dataset(args.dataset, data_dir=args.data_dir)
    if args.split not in data:
        raise ValueError(f"{args.data_dir} has no {args.split!r} split (it has {sorted(data)}): pick one with --split.")
    split = data[args.split]
    calibration = _index_calibration(args, model, data, image_processor)
    device = next(model.parameters()).device
    bf16 = resolve_bf16(True if args.bf16 else "auto", device)
    index = GalleryIndex.load_or_create(
        args.index_dir, model.config.embedding_dim, index_type=args.index_type, model_reference=str(args.model),
        model_fingerprint=model_fingerprint(model),
        embedding_settings=embedding_settings(image_processor, args.flip), runtime_settings=runtime_settings(bf16, device),
    )
    if calibration is not None:
        index.set_verification_calibration(calibration)
    elif args.threshold is not None or not len(index):  # a resumed build keeps its threshold unless given one
        index.verification_calibration = None
        index.verification_threshold = model.config.verification_threshold if args.threshold is None else args.threshold
    if len(index):  # resume: embed only the images the index does not hold yet
        indexed = index.indexed_paths
        split = split.select([i for i, path in enumerate(split["path"]) if path not in indexed])
        print(f"resuming {args.index_dir}: {len(index)} images indexed, {len(split)} to go")
    batches = iter_features(
        model, split, batch_size=args.batch_size, flip=args.flip, bf16=bf16, image_processor=image_processor,
    )
    added = index.add_batches(batches, checkpoint_dir=args.index_dir, checkpoint_every=args.checkpoint_every)
    if len(index) == 0:
        raise ValueError(f"the {args.split!r} split of {args.data_dir} has no images: nothing to index.")
    print(f"indexed {added} new images; {args.index_dir} holds {len(index)} ({index.index_type}, dim {index.dim})")
    return 0


def _index_calibration(args: argparse.Namespace, model, data, image_processor):
    """The calibration to store: `--calibrate_on SPLIT` computes one; else the model config's, unless `--threshold`."""
    from ..evaluation import ThresholdCalibration
    from ..model_evaluation import calibrate_model

    if args.calibrate_on is None:
        recorded = model.config.verification_calibration
        return ThresholdCalibration.from_dict(recorded) if recorded and args.threshold is None else None
    if args.threshold is not None:
        raise ValueError("give either --threshold (set by hand) or --calibrate_on SPLIT (calibrated), not both.")
    if args.calibrate_on not in data:
        raise ValueError(
            f"{args.data_dir} has no {args.calibrate_on!r} split to calibrate on (it has {sorted(data)}): pick one "
            "with --calibrate_on."
        )
    calibration = calibrate_model(
        model, data[args.calibrate_on], f"{args.dataset} {args.calibrate_on} split of {args.data_dir}",
        target_false_match_rate=args.target_false_match_rate, image_processor=image_processor,
        batch_size=args.batch_size, flip=args.flip, bf16=True if args.bf16 else "auto",
    )  # fmt: skip
    print(f"calibrated on {calibration.calibrated_on}\n  same person when cosine > {calibration.threshold:.4f} "
          f"(false-match rate {calibration.false_match_rate:.2g}, target {calibration.target_false_match_rate:.2g}; "
          f"true-match rate {calibration.true_match_rate:.1%})")  # fmt: skip
    return calibration


def run_search(args: argparse.Namespace) -> int:
    from ..features import embedding_settings, extract_features, model_fingerprint, resolve_bf16, runtime_settings
    from ..retrieval import GalleryIndex, search_other_cameras

    index = GalleryIndex.load(args.index_dir)
    cameras = args.query_camera or [None]
    if len(cameras) not in (1, len(args.images)):
        raise ValueError(f"give one --query_camera, or one per image ({len(args.images)}), not {len(cameras)}.")
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
    hits = search_other_cameras(
        index, queries.embeddings, args.top_k, cameras * (len(args.images) // len(cameras)),
        runtime_settings=runtime_settings(bf16, device),
    )
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
                match["path"] = hits.paths[row][rank]
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
    plot_ranked_lists(
        images, query_ids, index.paths, index.person_ids, ranked, path, top_k=top_k,
        query_titles=[Path(image).name for image in images],
    )
