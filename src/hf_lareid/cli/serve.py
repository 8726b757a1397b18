"""`lareid serve`: a web page (Gradio) that searches a gallery index and compares two people."""

from __future__ import annotations

import argparse

from ._common import add_runtime_argument

EXAMPLE = "lareid serve --index_dir ./lareid-demo/gallery_index --port 7860"
DESCRIPTION = (
    "Open a web page that searches a gallery index built by `lareid index` with an uploaded image and compares two "
    "people, with the index's calibrated same-person threshold. Needs the 'serve' extra (gradio)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `lareid serve`."""
    parser.add_argument("--index_dir", "--index-dir", required=True, help="a folder written by `lareid index`")
    parser.add_argument(
        "--model",
        default=None,
        help="the query model (default: the one the index records); a different model is refused",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 for the network)",
    )
    parser.add_argument(
        "--video_index_dir",
        "--video-index-dir",
        default=None,
        help="also a Video tab over a folder written by `lareid video index` (its own recorded model)",
    )
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default: 7860)")
    add_runtime_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Loads the index and its model, then serves the page until interrupted (Ctrl+C)."""
    from .web_app import import_gradio, launch_app
    from .web_service import ReIDService

    import_gradio()  # the missing-extra message before the model loads
    service = ReIDService.load(args.index_dir, model=args.model, runtime=args.runtime)
    print(
        f"serving {len(service.index)} gallery images of {args.index_dir} on http://{args.host}:{args.port} "
        "(Ctrl+C stops)",
        flush=True,
    )
    video_service = None
    if args.video_index_dir:
        from .video_web import VideoSearchService

        video_service = VideoSearchService(args.video_index_dir, runtime=args.runtime)
    launch_app(service, host=args.host, port=args.port, video_service=video_service)
    return 0
