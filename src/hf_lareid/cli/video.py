"""`lareid video index` / `lareid video search`: people in camera videos, as tracklets in a gallery index."""

from __future__ import annotations

import argparse
import sys

from ..utils.errors import InvalidInputError
from ._common import add_runtime_argument, threshold_argument

DESCRIPTION = (
    "People in video. `index`: detections (MOT det.txt/gt.txt per video, or a Hugging Face object-detection model) "
    "are linked into tracklets, a few crops of each embedded and averaged, and stored with video, camera, track id and "
    "time range in a FAISS or Qdrant gallery index; an interrupted run continues. `search`: the tracklets most like a "
    "person crop, with their times."
)
EXAMPLE = (
    "lareid video index ./my-model --videos cam1.mp4 cam2.mp4 --detections cam1_det.txt cam2_det.txt "
    "--index_dir ./video-index\n  lareid video search --index_dir ./video-index person.jpg --query_camera 1 "
    "--picture hits.png"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`index` and `search`, each with its own arguments (`lareid video index --help`)."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_index_arguments(actions.add_parser("index", help="index the people of videos as tracklets"))
    add_search_arguments(actions.add_parser("search", help="find the tracklets most like a person crop"))


def run(args: argparse.Namespace) -> int:
    return run_index(args) if args.action == "index" else run_search(args)


def add_index_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="a saved model folder or Hub id (recorded in the index)")
    parser.add_argument(
        "--videos",
        nargs="+",
        metavar="VIDEO",
        help="video files, frame folders or MOT sequence folders (img1/, seqinfo.ini); a folder of videos is expanded",
    )
    parser.add_argument("--index_dir", "--index-dir", required=True, help="the index folder to create or extend")
    parser.add_argument(
        "--detections",
        nargs="+",
        metavar="MOT_FILE",
        help="one MOT det.txt / gt.txt / tracker output per video, in the order of --videos",
    )
    parser.add_argument(
        "--detector",
        metavar="ID_OR_FOLDER",
        help="a Hugging Face object-detection model for videos without detections (person class only)",
    )
    parser.add_argument("--detector_threshold", "--detector-threshold", type=float, default=0.5, help="lowest score")
    parser.add_argument(
        "--cameras", nargs="+", type=int, metavar="CAM", help="camera of each video (default: from names like cam2.mp4)"
    )
    parser.add_argument("--fps", type=float, help="frame rate of frame folders (default: a MOT seqinfo.ini's)")
    parser.add_argument("--min_confidence", "--min-confidence", type=float, help="drop detections below this score")
    parser.add_argument("--min_frames", "--min-frames", type=int, default=3, help="shortest tracklet kept (frames)")
    parser.add_argument("--samples", type=int, default=4, help="crops embedded and averaged per tracklet (default: 4)")
    parser.add_argument("--batch_size", "--batch-size", type=int, default=32, help="crops per forward pass")
    parser.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    add_runtime_argument(parser)
    parser.add_argument("--backend", default="faiss", choices=["faiss", "qdrant"], help="index backend")
    parser.add_argument("--checkpoint_every", "--checkpoint-every", type=int, default=100, help="tracklets per save")
    parser.add_argument(
        "--threshold", type=threshold_argument, help="same-person threshold (default: the model's calibration)"
    )
    erasure = parser.add_argument_group("retention and erasure (no model needed)")
    erasure.add_argument("--remove", action="store_true", help="remove tracklets instead of indexing")
    erasure.add_argument("--camera_ids", "--camera-ids", type=int, nargs="+", metavar="CAM", help="of these cameras")
    erasure.add_argument("--older_than", "--older-than", metavar="WHEN", help="added before a date-time or 30d, 12h")
    erasure.add_argument("--verify", action="store_true", help="check the full SHA-256 of every index file")


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index_dir", "--index-dir", required=True, help="an index built by `lareid video index`")
    parser.add_argument("query", help="a person crop (image file)")
    parser.add_argument("--model", help="the model (default: the one recorded in the index)")
    parser.add_argument("--top_k", "--top-k", type=int, default=10, help="tracklets to show")
    parser.add_argument("--query_camera", "--query-camera", type=int, help="the query's camera: its tracklets left out")
    parser.add_argument("--picture", metavar="PNG", help="write a contact sheet (query, then each hit's crops)")
    add_runtime_argument(parser)


def _videos(paths: list[str]) -> list[str]:
    """Video files and frame folders; a folder holding video files (and no frames) stands for them, sorted."""
    from pathlib import Path

    from ..video.reader import FRAME_EXTENSIONS, MOT_FRAMES_FOLDER, VIDEO_EXTENSIONS

    found = []
    for path in paths:
        folder = Path(path)
        if folder.is_dir() and not (folder / MOT_FRAMES_FOLDER).is_dir():
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
            if files and not any(p.suffix.lower() in FRAME_EXTENSIONS for p in folder.iterdir()):
                found.extend(str(p) for p in files)
                continue
        found.append(path)
    return found


def run_index(args: argparse.Namespace) -> int:
    from ..retrieval import check_index_target
    from ..utils.io import folder_lock

    if (args.camera_ids or args.older_than) and not args.remove:
        raise InvalidInputError("--camera_ids / --older_than select tracklets to remove: add --remove.")
    check_index_target(args.index_dir)
    with folder_lock(args.index_dir):
        if args.remove or args.verify:
            return _edit(args)
        return _build(args)


def _edit(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..retrieval import GalleryIndex
    from ..video.search import check_video_index
    from ..video.tracklets import video_of_key

    index = GalleryIndex.load(args.index_dir, verify=args.verify)
    check_video_index(index, args.index_dir)
    if args.verify:
        print(f"{args.index_dir}: verified ({len(index)} tracklets)")
    if not args.remove:
        return 0
    criteria = {"camera_ids": args.camera_ids, "older_than": args.older_than}
    if args.videos:
        wanted = {str(Path(v).expanduser().absolute()) for v in args.videos}
        wanted |= {str(Path(v).expanduser().absolute() / "img1") for v in args.videos}
        criteria["paths"] = [key for key in index.paths or () if video_of_key(key) in wanted]
        if not criteria["paths"]:
            print(f"no tracklets of {' '.join(args.videos)} in {args.index_dir}")
            return 0
    if not any(value is not None for value in criteria.values()):
        raise InvalidInputError("say what to remove: --videos, --camera_ids and/or --older_than.")
    removed = index.remove(**{k: v for k, v in criteria.items() if v is not None})
    if removed:
        index.save(args.index_dir)
    print(f"removed {removed} tracklets; {args.index_dir} holds {len(index)}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from ..retrieval import GalleryIndex, QdrantGalleryIndex
    from ..tracking import ReIDBackend
    from ..video import VIDEO_INDEX_DATASET, PersonDetector, VideoJob, index_videos
    from ..video.search import check_video_index
    from ._common import load_model_and_processor

    if not args.model or not args.videos:
        raise InvalidInputError("indexing needs a model and --videos (or use --remove / --verify).")
    videos = _videos(args.videos)
    for name, values in (("--detections", args.detections), ("--cameras", args.cameras)):
        if values is not None and len(values) != len(videos):
            raise InvalidInputError(f"{name} gives {len(values)} values for {len(videos)} videos: give one per video.")
    jobs = [
        VideoJob(
            video,
            camera_id=None if args.cameras is None else args.cameras[i],
            detections=None if args.detections is None else args.detections[i],
            fps=args.fps,
        )
        for i, video in enumerate(videos)
    ]
    model, image_processor = load_model_and_processor(args.model)
    backend = ReIDBackend(model, image_processor, runtime=args.runtime, flip=args.flip, batch_size=args.batch_size)
    detector = PersonDetector(args.detector, args.detector_threshold) if args.detector else None
    open_index = QdrantGalleryIndex.load_or_create if args.backend == "qdrant" else GalleryIndex.load_or_create
    index = open_index(
        args.index_dir,
        backend.embedding_dim,
        model_reference=str(args.model),
        dataset=VIDEO_INDEX_DATASET,
        **backend.encoder.provenance.index_fields(),
    )
    if len(index):
        check_video_index(index, args.index_dir)
        index.check_fingerprint(backend.encoder.provenance.model_fingerprint)
    if args.threshold is not None or not len(index):
        calibration = model.config.verification_calibration
        if args.threshold is None and calibration:
            index.set_verification_calibration(calibration)
        else:
            index.set_verification_threshold(
                model.config.verification_threshold if args.threshold is None else args.threshold
            )
    added = index_videos(
        backend,
        jobs,
        index,
        args.index_dir,
        detector=detector,
        samples_per_tracklet=args.samples,
        min_frames=args.min_frames,
        min_confidence=args.min_confidence,
        checkpoint_every=args.checkpoint_every,
        progress=sys.stderr.isatty(),
    )
    print(f"indexed {added} new tracklets; {args.index_dir} holds {len(index)}")
    return 0


def run_search(args: argparse.Namespace) -> int:
    from ..retrieval import GalleryIndex
    from ..tracking import ReIDBackend
    from ..video import draw_contact_sheet, search_tracklets
    from ..video.search import check_video_index
    from ._common import load_model_and_processor

    index = GalleryIndex.load(args.index_dir)
    check_video_index(index, args.index_dir)
    model_ref = args.model or index.model_reference
    if not model_ref:
        raise InvalidInputError(f"{args.index_dir} records no model: give --model.")
    model, image_processor = load_model_and_processor(model_ref)
    flip = bool((index.embedding_settings or {}).get("flip", False))
    backend = ReIDBackend(model, image_processor, runtime=args.runtime, flip=flip)
    hits = search_tracklets(index, backend, args.query, top_k=args.top_k, query_camera=args.query_camera)
    left_out = f" (camera {args.query_camera} left out)" if args.query_camera is not None else ""
    print(f"{len(hits)} tracklets most like {args.query}{left_out}:")
    for rank, hit in enumerate(hits, start=1):
        print(f"{rank:3d}. {hit.describe()}")
    if args.picture:
        print(f"contact sheet: {draw_contact_sheet(args.query, hits, args.picture)}")
    return 0
