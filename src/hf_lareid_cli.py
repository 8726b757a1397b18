"""`lareid`: the command line of hf-lareid. One subcommand per job; `lareid SUBCOMMAND --help` shows an example.

Why this module lives outside the `hf_lareid` package: Python runs a package's `__init__` before any of its
modules, and `hf_lareid/__init__.py` imports torch and transformers to register the model with `AutoConfig` /
`AutoModel` (what `import hf_lareid; AutoModel.from_pretrained(folder)` relies on). An entry point inside the
package would pay those seconds before printing `--help` or a usage error. So the console script
`lareid = hf_lareid_cli:main` is this small top-level module of the same distribution: it imports only the standard
library, lists the subcommands from [`SUBCOMMANDS`], and imports a subcommand's module (and with it torch) only
once that subcommand is chosen.

Adding a subcommand: write `hf_lareid/cli/NAME.py` with `EXAMPLE` (one command line), `add_arguments(parser)` and
`run(args) -> int` (optionally `DESCRIPTION`, a longer text for its `--help`), and add one line to `SUBCOMMANDS`.
A subcommand that parses its own flags (`train`: `HfArgumentParser` over `TrainingArguments`) defines
`main(argv, prog) -> int` instead of `add_arguments` and `run`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import NamedTuple


class Subcommand(NamedTuple):
    """Where a subcommand lives and its one-line help (shown by `lareid --help` without importing the module)."""

    module: str
    help: str


SUBCOMMANDS: dict[str, Subcommand] = {
    "demo": Subcommand(
        "hf_lareid.cli.demo", "the main job on generated people: train, evaluate, index, draw (no download)"
    ),
    "train": Subcommand("hf_lareid.cli.train", "train an LA-Transformer (same flags as examples/train.py)"),
    "evaluate": Subcommand("hf_lareid.cli.evaluate", "Rank-1/5/10, mAP, mINP of a model on one or several datasets"),
    "index": Subcommand("hf_lareid.cli.index", "embed a dataset split into a FAISS gallery index"),
    "search": Subcommand("hf_lareid.cli.search", "find the gallery images most similar to query images"),
    "serve": Subcommand("hf_lareid.cli.serve", "a web page that searches a gallery index and compares two people"),
    "convert-original": Subcommand("hf_lareid.cli.convert", "convert an original LA-Transformer checkpoint"),
    "export-onnx": Subcommand("hf_lareid.cli.export", "export the embedding model to ONNX and verify it"),
    "push": Subcommand("hf_lareid.cli.push", "upload a trained model folder to the Hugging Face Hub"),
}

# Libraries whose INFO logs and warnings would bury the subcommands' own output (tqdm bars are not logs: they stay).
QUIET_LOGGERS = ("transformers", "datasets", "httpx", "huggingface_hub", "faiss", "faiss.loader", "matplotlib")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: `--debug` and the subcommand names with their help (no subcommand module imported)."""
    parser = argparse.ArgumentParser(
        prog="lareid",
        description="Person re-identification with the Locally Aware Transformer (hf-lareid).",
        epilog="Example: lareid demo --quick\nEvery subcommand shows an example: lareid SUBCOMMAND --help",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, subcommand in SUBCOMMANDS.items():
        # add_help=False: `lareid NAME --help` reaches the subcommand's own parser.
        subparsers.add_parser(name, help=subcommand.help, add_help=False)
    return parser


def build_subcommand_parser(name: str, module: ModuleType | None = None) -> argparse.ArgumentParser:
    """
    The parser of subcommand `name` (`prog` is `lareid NAME`; its `--help` ends with the module's `EXAMPLE`).

    Imports the subcommand's module unless `module` is given.
    """
    module = module or importlib.import_module(SUBCOMMANDS[name].module)
    parser = argparse.ArgumentParser(
        prog=f"lareid {name}",
        description=getattr(module, "DESCRIPTION", SUBCOMMANDS[name].help),
        epilog=f"Example:\n  {module.EXAMPLE}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    return parser


def configure_logging(debug: bool) -> None:
    """Plain INFO messages; the libraries' own logs only from ERROR up (everything with `--debug`)."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="%(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if debug else logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs `lareid`; returns the exit status (0 success, 1 error printed as one line, 2 usage error, 130 Ctrl-C)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        command = build_parser().parse_known_args(argv)[0].command
    except SystemExit as exit_:  # --help, or a usage error (printed by argparse)
        return _exit_code(exit_)
    # The subcommand's arguments: everything after its name, without --debug (accepted anywhere).
    rest = [arg for arg in argv[argv.index(command) + 1 :] if arg != "--debug"]
    return _run(lambda: _dispatch(command, rest, debug), debug, command)


def _dispatch(command: str, rest: list[str], debug: bool) -> int:
    module = importlib.import_module(SUBCOMMANDS[command].module)
    # After the import: importing transformers resets its logger's level.
    configure_logging(debug)
    if hasattr(module, "main"):
        return module.main(rest, prog=f"lareid {command}")
    args = build_subcommand_parser(command, module).parse_args(rest)
    return module.run(args)


def _exit_code(exit_: SystemExit) -> int:
    return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)


def _run(job: Callable[[], int | None], debug: bool, command: str) -> int:
    try:
        status = job()
    except KeyboardInterrupt:
        print(f"lareid {command}: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exit_:  # argparse: --help or a usage error, already printed
        return _exit_code(exit_)
    except Exception as error:  # one clear line for the user; --debug shows the traceback
        if debug:
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"lareid {command}: error: {message} (run with --debug for the traceback)", file=sys.stderr)
        return 1
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
