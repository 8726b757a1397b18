"""`lareid train`: the training entry point of `examples/train.py` (`HfArgumentParser` over `TrainingArguments`).

`--help` shows this package's own flags, the most used training flags and an example; `--help-all` lists every
`TrainingArguments` flag (all of them are accepted either way). Both, and unknown flags, are answered from
`train_flags.json` without importing torch (`answer_early`); tests/cli/test_cli_manners.py checks that file against
the live parsers (regenerate it with `write_flags_manifest()`).
"""

from __future__ import annotations

import argparse
import copy
import json
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

EXAMPLE = "lareid train --setup tiny --output_dir ./tiny-reid --max_steps 200"
DESCRIPTION = (
    "Train an LA-Transformer: --setup gives the architecture and the training defaults, --backbone the ViT to start "
    "from (a pretrained one without --setup: the small recipe, blockwise fine-tuning at a re-ID crop; none: tiny "
    "from scratch), --dataset/--data_dir the data (default: a generated set, no download). Evaluates Rank-1/5/10, "
    "mAP and mINP on the query/gallery splits and saves the model, its image processor and a model card to "
    "--output_dir."
)
USAGE = (
    "%(prog)s [--setup NAME] [--backbone NAME|FOLDER|random] [--dataset NAME ...] [--data_dir DIR ...] "
    "--output_dir DIR [TRAINING FLAGS]"
)
# The TrainingArguments flags most runs set, listed by `--help` (`--help-all` lists them all).
COMMON_TRAINING_FLAGS = (
    "output_dir",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "learning_rate",
    "eval_strategy",
    "metric_for_best_model",
    "load_best_model_at_end",
    "bf16",
    "seed",
    "resume_from_checkpoint",
    "push_to_hub",
    "hub_model_id",
    "disable_tqdm",
)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The description and example kept as written; a flag's default after its help where there is one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help = action.help or ""
        if action.default not in (None, [], argparse.SUPPRESS) and "%(default)" not in help and action.option_strings:
            help += " (default: %(default)s)"
        return help


def short_help_parser(prog: str = "lareid train") -> argparse.ArgumentParser:
    """The parser behind `lareid train --help`: the package's flags, then [`COMMON_TRAINING_FLAGS`], then an example."""
    from transformers import HfArgumentParser

    from ..scripts.train import DataArguments, ModelArguments, build_parser

    parser = HfArgumentParser(
        (ModelArguments, DataArguments),
        prog=prog,
        usage=USAGE,
        formatter_class=_HelpFormatter,
        description=f"{textwrap.fill(DESCRIPTION, 100)}\n\nExample:\n  {EXAMPLE}",
        epilog=f"Every TrainingArguments flag is accepted: `{prog} --help-all` lists them.",
    )
    group = parser.add_argument_group(
        f"most used training flags (all of them: {prog} --help-all)",
        "Their defaults come from the --setup's training_args.json, else from transformers' TrainingArguments.",
    )
    for action in build_parser(prog)._actions:
        if action.dest in COMMON_TRAINING_FLAGS:
            shown = copy.copy(action)
            shown.default = None  # TrainingArguments' own default is not the one a setup gives
            if action.dest == "disable_tqdm":
                shown.help = "Turn the training and evaluation progress bars off (they are on by default)."
            group._add_action(shown)
    return parser


FLAGS_MANIFEST = Path(__file__).with_name("train_flags.json")
MANIFEST_COLUMNS = 100  # the terminal width the stored help texts are formatted for


def flags_manifest(prog: str = "lareid train") -> dict:
    """The help texts and option strings of the train parsers (imports transformers): what `train_flags.json` holds.
    Format with the environment's `COLUMNS` set to `MANIFEST_COLUMNS`."""
    from ..scripts.train import build_parser

    full = build_parser(prog)
    options = {option for action in full._actions for option in action.option_strings} | {"--help-all"}
    return {"help": short_help_parser(prog).format_help(), "help_all": full.format_help(), "options": sorted(options)}


def write_flags_manifest() -> None:
    """Regenerates `train_flags.json` from the live parsers (after a change of the training arguments)."""
    import os

    os.environ["COLUMNS"] = str(MANIFEST_COLUMNS)
    FLAGS_MANIFEST.write_text(json.dumps(flags_manifest(), indent=1) + "\n", encoding="utf-8")


def answer_early(argv: Sequence[str], prog: str = "lareid train") -> None:
    """
    `--help`, `--help-all` and unknown flags, answered from `train_flags.json` before torch is imported: prints the
    help and exits 0, or prints a usage error and exits 2 (as argparse does, prefixes of a flag included); returns
    when the arguments are for a run.
    """
    import sys

    manifest = json.loads(FLAGS_MANIFEST.read_text(encoding="utf-8"))
    if "--help-all" in argv or "-h" in argv or "--help" in argv:
        print(manifest["help_all" if "--help-all" in argv else "help"], end="")
        raise SystemExit(0)
    usage = manifest["help"].split("\n\n", 1)[0]
    if not any(arg.split("=", 1)[0] in ("--output_dir", "--output-dir") for arg in argv):
        print(f"{usage}\n{prog}: error: the following arguments are required: --output_dir", file=sys.stderr)
        raise SystemExit(2)
    options = manifest["options"]
    unknown, in_unknown = [], False  # an unknown flag with the values after it, as argparse reports them
    for arg in argv:
        if arg.startswith("--"):
            in_unknown = not any(option.startswith(arg.split("=", 1)[0]) for option in options)
        if in_unknown:
            unknown.append(arg)
    if unknown:
        print(f"{usage}\n{prog}: error: unrecognized arguments: {' '.join(unknown)}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: Sequence[str], prog: str = "lareid train") -> int:
    """`--help`: the short help; `--help-all`: every flag; else trains with `hf_lareid.scripts.train.main`."""
    from ..scripts.train import build_parser
    from ..scripts.train import main as train

    argv = list(argv)
    if "--help-all" in argv:
        build_parser(prog).print_help()
    elif "-h" in argv or "--help" in argv:
        short_help_parser(prog).print_help()
    else:
        metrics = train(argv, prog=prog)
        print(final_report(_output_dir(argv), metrics))
    return 0


def final_report(output_dir: str | None, metrics: Mapping[str, float]) -> str:
    """
    The last line of `lareid train`: where the model is and its final evaluation in percent (as `lareid evaluate`).

    Example:
        >>> final_report("./tiny-reid", {"eval_rank1": 0.5, "eval_rank5": 0.75, "eval_mAP": 0.4123})
        'saved the model to ./tiny-reid; final evaluation: Rank-1 50.0%, Rank-5 75.0%, mAP 41.2%'
    """
    where = f"saved the model to {output_dir}" if output_dir else "saved the model"
    scores = ", ".join(
        f"{title} {100 * metrics[key]:.1f}%" for key, title in FINAL_METRICS if isinstance(metrics.get(key), float)
    )
    return f"{where}; final evaluation: {scores}" if scores else where


# The final evaluation's metrics that `lareid train` reports (Trainer keys -> names).
FINAL_METRICS = (
    ("eval_rank1", "Rank-1"),
    ("eval_rank5", "Rank-5"),
    ("eval_rank10", "Rank-10"),
    ("eval_mAP", "mAP"),
    ("eval_mINP", "mINP"),
)


def _output_dir(argv: Sequence[str]) -> str | None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--output_dir", "--output-dir")
    return parser.parse_known_args(argv)[0].output_dir
