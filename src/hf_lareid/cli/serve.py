"""`lareid serve`: a web page (Gradio) that searches a gallery index and compares two people."""

from __future__ import annotations

import argparse

from ._common import add_runtime_argument


def port_argument(text: str) -> int:
    """argparse type of `--port`: a TCP port number, 1 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1 to 65535)")
    return port


def check_port_free(host: str, port: int) -> None:
    """Raises `OSError` naming `--port` when nothing can listen on `host:port` (taken, or not an address here)."""
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the web server does
            probe.bind((host, port))
    except OSError as error:
        reason = error.strerror or str(error)
        raise OSError(
            f"cannot listen on {host}:{port} ({reason}): another program uses the port, or the address is not this "
            "machine's; pick another with --port (or --host)",
        ) from None


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
    parser.add_argument("--port", type=port_argument, default=7860, help="port to listen on (default: 7860)")
    parser.add_argument(
        "--data_dir",
        "--data-dir",
        default=None,
        help="where the indexed images are now, if their folder moved (default: the folder the index records)",
    )
    add_runtime_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Loads the index and its model, then serves the page until interrupted (Ctrl+C)."""
    from ..web.app import import_gradio, launch_app
    from ..web.service import ReIDService

    import_gradio()  # the missing-extra message before the model loads
    check_port_free(args.host, args.port)
    service = ReIDService.load(args.index_dir, model=args.model, runtime=args.runtime, data_dir=args.data_dir)
    print(
        f"serving {len(service.index)} gallery images of {args.index_dir} on http://{args.host}:{args.port} "
        "(Ctrl+C stops)",
        flush=True,
    )
    video_service = None
    if args.video_index_dir:
        from ..web.video_tab import VideoSearchService

        video_service = VideoSearchService(args.video_index_dir, runtime=args.runtime)
    launch_app(service, host=args.host, port=args.port, video_service=video_service)
    return 0
