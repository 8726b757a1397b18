"""`lareid`: the command line of hf-lareid. One subcommand per job; `lareid SUBCOMMAND --help` shows an example."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from . import convert, demo, evaluate, export, index, push, serve, train

SUBCOMMANDS = (demo, train, evaluate, index, serve, convert, export, push)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lareid",
        description="Person re-identification with the Locally Aware Transformer (hf-lareid).",
        epilog="Example: lareid demo --quick",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs `lareid`; returns the exit status (0 on success, 1 on an error, printed as one line)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    logging.basicConfig(level=logging.INFO if not debug else logging.DEBUG, format="%(message)s")
    for name in ("transformers", "datasets", "httpx", "huggingface_hub", "faiss", "faiss.loader"):
        logging.getLogger(name).setLevel(logging.ERROR if not debug else logging.INFO)
    if argv and argv[0] == "train":
        # The training script owns its flags (HfArgumentParser over TrainingArguments).
        return _run(lambda: train.run(argv[1:]), debug, "train")
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    return _run(lambda: args.func(args), debug, args.command)


def _run(job, debug: bool, command: str) -> int:
    try:
        status = job()
    except KeyboardInterrupt:
        print(f"lareid {command}: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exit_:  # argparse inside a subcommand
        return exit_.code if isinstance(exit_.code, int) else 1
    except Exception as error:  # one clear line for the user; --debug shows the traceback
        if debug:
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"lareid {command}: error: {message} (run with --debug for the traceback)", file=sys.stderr)
        return 1
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
