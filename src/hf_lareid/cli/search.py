"""`lareid search`: the gallery images most similar to each query image, from an index built by `lareid index`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..utils.errors import InvalidInputError
from ._common import (
    add_runtime_argument,
    load_model_and_processor,
    positive_int_argument,
    write_json,
)

DESCRIPTION = "Find the gallery images most similar to each query image in an index built by `lareid index`."
EXAMPLE = "lareid search --index_dir ./market-index query/0001_c1s1_001051_00.jpg --top_k 5 --picture ranks.png"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="query image files")
    parser.add_argument("--index_dir", "--index-dir", required=True, help="a folder written by `lareid index`")
    parser.add_argument(
        "--model",
        default=None,
        help="the query model (default: the one the index records); a different model is refused",
    )
    parser.add_argument(
        "--data_dir",
        "--data-dir",
        default=None,
        help="where the indexed images are now, if their folder moved (default: the folder the index records)",
    )
    parser.add_argument("--top_k", "--top-k", type=positive_int_argument, default=10, help="hits per query")
    parser.add_argument("--picture", default=None, help="also draw the ranked lists into this PNG")
    parser.add_argument("--output_json", "--output-json", default=None, help="also write the hits as JSON")
    parser.add_argument("--flip", action="store_true", help="flip test-time augmentation (use it if the index did)")
    parser.add_argument(
        "--query_camera",
        "--query-camera",
        type=int,
        nargs="+",
        default=None,
        metavar="CAMERA",
        help="camera id of the queries (one, or one per image): gallery images from that camera are "
        "left out, as the re-ID protocol does",
    )
    add_runtime_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ..tasks.search import open_gallery_index
    from ..utils.output_guard import check_outputs, claim_outputs

    for flag, path in (("--picture", args.picture), ("--output_json", args.output_json)):
        if path is not None and Path(path).is_dir():
            raise IsADirectoryError(f"{flag} {path} is a folder: give the path of a file to write.")
    outputs = [path for path in (args.output_json, args.picture) if path]
    fix = "pass another --picture / --output_json file"
    check_outputs(outputs, fix)  # before anything loads
    index, model_ref = open_gallery_index(args.index_dir, args.model, args.data_dir, need_images=bool(args.picture))
    cameras = args.query_camera or [None]
    if len(cameras) not in (1, len(args.images)):
        raise InvalidInputError(f"give one --query_camera, or one per image ({len(args.images)}), not {len(cameras)}.")
    missing = [image for image in args.images if not Path(image).is_file()]
    if missing and Path(missing[0]).is_dir():
        raise InvalidInputError(
            f"query image {missing[0]!r} is a folder: pass image files to search with (e.g. {missing[0]}/*.jpg)."
        )
    if missing:
        raise FileNotFoundError(f"query image {missing[0]!r} does not exist: pass image files to search with.")
    if args.picture:  # before the model loads: the plots extra and an index that can show its images
        from ..analysis import pictures  # noqa: F401  (raises naming the 'plots' extra when matplotlib is missing)

        if index.paths is None or index.person_ids is None:
            raise InvalidInputError(
                f"the index in {args.index_dir} stores no image paths or person ids: --picture cannot draw it."
            )
    with claim_outputs(outputs, fix=fix):
        return _search(args, index, model_ref, cameras)


def _search(args: argparse.Namespace, index, model_ref: str, cameras: list) -> int:
    """The search of [`run`] once its inputs are checked and its output files claimed."""
    from ..embedding import ReIDEncoder, bf16_option
    from ..retrieval import search_other_cameras

    model, image_processor = load_model_and_processor(model_ref)
    encoder = ReIDEncoder(model, image_processor, runtime=args.runtime, bf16=bf16_option(False), flip=args.flip)
    provenance = encoder.provenance
    index.check_provenance(provenance)  # before embedding: another model or other settings are refused at once
    queries = encoder.encode(list(args.images))
    hits = search_other_cameras(
        index,
        queries.embeddings,
        args.top_k,
        cameras * (len(args.images) // len(cameras)),
        provenance=provenance,
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
                match["path"] = index.resolve_path(hits.paths[row][rank])
            if hits.same_person is not None:
                match["same_person"] = bool(hits.same_person[row, rank])
            matches.append(match)
            print(
                "  "
                + "  ".join(
                    f"{key}={value:.4f}" if isinstance(value, float) else f"{key}={value}"
                    for key, value in match.items()
                    if key != "index"
                )
            )
        results.append({"query": image, "matches": matches})
    if args.output_json:
        write_json(args.output_json, {"index_dir": str(args.index_dir), "model": str(model_ref), "results": results})
        print(f"wrote {args.output_json}")
    if args.picture:
        _draw_ranked_lists(args.images, index, hits, args.picture, args.top_k)
        print(f"wrote {args.picture}")
    return 0


def _draw_ranked_lists(images: list[str], index, hits, path: str, top_k: int) -> None:
    """
    The query images and their hits with their scores. A query's identity comes from its file name where it parses
    (see `_query_identities`): its hits are framed by identity. Otherwise they are framed by the index threshold's
    verdict.
    """
    from ..analysis.pictures import plot_ranked_lists

    query_ids, titles = _query_identities(images, index)
    gallery_paths = [index.resolve_path(gallery_path) for gallery_path in index.paths]
    plot_ranked_lists(
        images,
        query_ids,
        gallery_paths,
        index.person_ids,
        hits.indices,
        path,
        top_k=top_k,
        query_titles=titles,
        scores=hits.scores,
        same_person=hits.same_person,
    )


def _query_identities(images: list[str], index) -> tuple[list[int | None], list[str]]:
    """Each query's person id (None where unknown) and picture title. The ids are read with the file-name scheme of
    the data set the index was built from; a set whose names carry no identity (or an index that records no data set)
    gets one line saying so."""
    from ..data import ReIDDataError, file_name_scheme

    scheme = None if index.dataset is None else file_name_scheme(index.dataset)
    if scheme is None:
        why = (
            "the index records no dataset"
            if index.dataset is None
            else f"{index.dataset} file names carry no person id"
        )
        print(f"query identities unknown ({why}): the picture frames hits by the threshold's verdict only")
    query_ids, titles = [], []
    for image in images:
        try:
            query_ids.append(None if scheme is None else scheme.parse(image)[0])
        except ReIDDataError:
            query_ids.append(None)
        titles.append(
            f"{Path(image).name}\n" + ("identity unknown" if query_ids[-1] is None else f"id {query_ids[-1]}")
        )
    return query_ids, titles
