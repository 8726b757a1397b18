"""`lareid train`: the same entry point as `examples/train.py` (HfArgumentParser over TrainingArguments)."""

from __future__ import annotations

from collections.abc import Sequence

from ._common import add_command


def add_parser(subparsers) -> None:
    # Listed for `lareid --help`; `lareid train ...` is dispatched straight to the training entry point.
    add_command(
        subparsers,
        "train",
        "Train an LA-Transformer (see `lareid train --help`; same flags as examples/train.py).",
        "lareid train --setup tiny --output_dir ./tiny-reid --max_steps 200",
    )


def run(argv: Sequence[str]) -> int:
    from ..training.run import main

    main(list(argv))
    return 0
