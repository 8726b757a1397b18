"""`lareid`: the command line of hf-lareid. One subcommand per job; `lareid SUBCOMMAND --help` shows an example.

Why this module lives outside the `hf_lareid` package: Python runs a package's `__init__` before any of its
modules, and `hf_lareid/__init__.py` imports torch and transformers to register the model with `AutoConfig` /
`AutoModel` (what `import hf_lareid; AutoModel.from_pretrained(folder)` relies on). An entry point inside the
package would pay those seconds before printing `--help` or a usage error. So the console script
`lareid = hf_lareid_cli:main` is this small top-level module of the same distribution: it imports only the standard
library, lists the subcommands from [`SUBCOMMANDS`], and imports a subcommand's module only once that subcommand is
chosen. Even then `hf_lareid/__init__` (torch) runs only after the subcommand's arguments parse: `lareid NAME --help`
and usage errors need nothing but the subcommand's module, which imports only the standard library at module level
and in `add_arguments` (the names it offers as choices come from `hf_lareid/cli/_choices.py`).

Errors: an `hf_lareid.utils.errors.LAReIDError` and the other problems a user can fix ([`is_user_error`]) are printed as
one line (exit 1); anything else is a bug, printed with its traceback and [`BUG_HINT`]; `--debug` raises everything.

Adding a subcommand: write `hf_lareid/cli/NAME.py` with `EXAMPLE` (one command line), `add_arguments(parser)` and
`run(args) -> int` (optionally `DESCRIPTION`, a longer text for its `--help`), and add one line to `SUBCOMMANDS`.
A subcommand that parses its own flags (`train`: `HfArgumentParser` over `TrainingArguments`) defines
`main(argv, prog) -> int` instead of `add_arguments` and `run`.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import importlib.util
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple


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
    "video": Subcommand(
        "hf_lareid.cli.video", "index the people of camera videos as tracklets; search them with a crop"
    ),
    "serve": Subcommand("hf_lareid.cli.serve", "a web page that searches a gallery index and compares two people"),
    "convert-original": Subcommand("hf_lareid.cli.convert", "convert an original LA-Transformer checkpoint"),
    "export-onnx": Subcommand("hf_lareid.cli.export", "export the embedding model to ONNX and verify it"),
    "push": Subcommand("hf_lareid.cli.push", "upload a trained model folder to the Hugging Face Hub"),
}

# Libraries whose INFO logs and warnings would bury the subcommands' own output (tqdm bars are not logs: they stay).
QUIET_LOGGERS = ("transformers", "datasets", "httpx", "huggingface_hub", "faiss", "faiss.loader", "matplotlib")

# OS errors that are about the user's files or machine, not a bug: a missing or existing path, a folder where a file
# is expected (and back), permissions, a full disk or quota, a read-only place, a symlink loop, a name too long.
USER_ERRNOS = frozenset(
    {errno.ENOENT, errno.EEXIST, errno.EISDIR, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT}
    | {errno.EROFS, errno.ELOOP, errno.ENAMETOOLONG, errno.ENOTEMPTY, errno.EBUSY, errno.EADDRINUSE}
)
PACKAGE = "hf_lareid"
_deferred_package: ModuleType | None = None  # `hf_lareid` while its __init__ waits (see _defer_package_init)
BUG_HINT = (
    "this is a bug in hf-lareid, not a problem with your input. Please report it with the traceback above and the "
    "command you ran."
)


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
    """
    Plain INFO messages; the libraries' own logs only from ERROR up (everything with `--debug`); without `--debug`
    no transformers progress bars ("Loading weights", "Writing model shards": they report no work of the command).
    """
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="%(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if debug else logging.ERROR)
    transformers_logging = sys.modules.get("transformers.utils.logging")
    if transformers_logging is not None and hasattr(transformers_logging, "set_tqdm_hook"):
        transformers_logging.set_tqdm_hook(None if debug else _no_bar)


def _no_bar(factory: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return factory(*args, **{**kwargs, "disable": True})


def main(argv: Sequence[str] | None = None) -> int:
    """Runs `lareid`; returns the exit status (0 success, 1 error: one line for a user error, a traceback for a bug; 2 usage error;
    130 Ctrl-C)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        command = build_parser().parse_known_args(argv)[0].command
    except SystemExit as exit_:  # --help, or a usage error (printed by argparse)
        return _exit_code(exit_)
    # The subcommand's arguments: everything after its name, without --debug (accepted anywhere).
    rest = [arg for arg in argv[argv.index(command) + 1 :] if arg != "--debug"]
    try:
        args = _parse_before_package_init(command, rest)
    except SystemExit as exit_:  # --help, or a usage error: printed without importing torch
        return _exit_code(exit_)
    return _run(lambda: _dispatch(command, rest, args, debug), debug, command)


def _parse_before_package_init(command: str, rest: list[str]) -> argparse.Namespace | None:
    """
    The subcommand's arguments, parsed before `hf_lareid/__init__` runs (it imports torch and transformers to
    register the model), so that `--help` and usage errors print at once; `None` where the subcommand parses its own
    (`main`) or its module needs the package in full (then `_dispatch` imports it and reports any error).

    The subcommand modules import only the standard library at module level and in `add_arguments`.
    """
    _defer_package_init()
    try:
        module = importlib.import_module(SUBCOMMANDS[command].module)
    except Exception:
        return None
    if hasattr(module, "main"):
        answer_early = getattr(module, "answer_early", None)  # --help and usage errors of a module that parses its own
        if answer_early is not None:
            answer_early(rest, f"lareid {command}")
        return None
    return build_subcommand_parser(command, module).parse_args(rest)


def _defer_package_init() -> None:
    """Puts the `hf_lareid` package in `sys.modules` with its `__init__` not yet run ([`_finish_package_init`] runs
    it), so that its light submodules import; nothing to do where it is imported already."""
    global _deferred_package
    spec = None if PACKAGE in sys.modules else importlib.util.find_spec(PACKAGE)
    if spec is not None and spec.loader is not None:
        _deferred_package = sys.modules[PACKAGE] = importlib.util.module_from_spec(spec)


def _finish_package_init() -> None:
    """Runs `hf_lareid/__init__` where [`_defer_package_init`] left it out; the submodules already imported stay."""
    global _deferred_package
    package, _deferred_package = _deferred_package, None
    if package is None:
        return
    try:
        package.__spec__.loader.exec_module(package)
    except BaseException:
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]  # a failed import leaves nothing half-initialised behind
        raise


def _dispatch(command: str, rest: list[str], args: argparse.Namespace | None, debug: bool) -> int:
    _finish_package_init()
    module = importlib.import_module(SUBCOMMANDS[command].module)
    # After the import: importing transformers resets its logger's level.
    configure_logging(debug)
    from tqdm.contrib.logging import logging_redirect_tqdm

    # Log lines through tqdm.write: a line logged while a progress bar is drawn starts on a line of its own.
    with logging_redirect_tqdm():
        if hasattr(module, "main"):
            return module.main(rest, prog=f"lareid {command}")
        if args is None:
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
    except Exception as error:
        if debug:
            raise
        if is_user_error(error):  # one line that names the file and the fix; --debug shows the traceback
            print(
                f"lareid {command}: error: {_first_line(error)} (run with --debug for the traceback)", file=sys.stderr
            )
        else:  # a bug: the traceback is what a report needs
            traceback.print_exception(error, file=sys.stderr)
            print(f"lareid {command}: internal error: {BUG_HINT}", file=sys.stderr)
        return 1
    return int(status or 0)


def is_user_error(error: BaseException) -> bool:
    """
    Whether `error` is about the user's input, files or installation (shown as one line) rather than a bug.

    That is: an `hf_lareid.utils.errors.LAReIDError` (the package reports every problem with the user's input as
    one, e.g. an `InvalidInputError`); an `OSError` of the kinds in [`USER_ERRNOS`], or one raised with a message only
    (how the package, transformers and the Hub report a missing or unusable model). Anything else, a plain
    `ValueError` included (wherever it was raised), a `TypeError`, `KeyError`, `AttributeError`..., is a bug.
    """
    errors_module = sys.modules.get("hf_lareid.utils.errors")  # imported by the subcommand when it could raise one
    if errors_module is not None and isinstance(error, errors_module.LAReIDError):
        return True
    if isinstance(error, OSError):
        return error.errno is None or error.errno in USER_ERRNOS
    return False


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
