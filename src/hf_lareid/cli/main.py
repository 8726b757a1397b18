"""Kept for `python -m hf_lareid.cli.main` and older imports: the `lareid` command lives in the top-level module
`hf_lareid_cli` (outside this package, so that `lareid --help` imports neither torch nor transformers)."""

import sys

from hf_lareid_cli import SUBCOMMANDS, build_parser, build_subcommand_parser, main

__all__ = ["SUBCOMMANDS", "build_parser", "build_subcommand_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
