"""The `lareid` entry point: help and usage errors without torch, the subcommand table, `lareid train --help`."""

import configparser
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import hf_lareid_cli
from hf_lareid_cli import SUBCOMMANDS, build_subcommand_parser, main

REPO = Path(__file__).resolve().parents[2]
HEAVY_MODULES = ("torch", "transformers", "datasets", "hf_lareid", "matplotlib", "faiss")


def run_entry_point(*argv: str) -> dict:
    """Runs `hf_lareid_cli.main(argv)` (what the console script calls) in a fresh interpreter."""
    script = (
        "import json, sys\n"
        "from hf_lareid_cli import main\n"
        f"status = main({list(argv)!r})\n"
        f"loaded = [name for name in {HEAVY_MODULES!r} if name in sys.modules]\n"
        "print('\\nRESULT ' + json.dumps({'status': status, 'loaded': loaded}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.rsplit("RESULT ", 1)[1])
    return {**report, "out": result.stdout.rsplit("RESULT ", 1)[0], "err": result.stderr}


def test_the_console_script_is_the_top_level_module():
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    assert setup["options.entry_points"]["console_scripts"].split() == ["lareid", "=", "hf_lareid_cli:main"]
    assert setup["options"]["py_modules"].strip() == "hf_lareid_cli"
    assert Path(hf_lareid_cli.__file__).parent == REPO / "src"  # beside the package, not inside it


@pytest.mark.parametrize(
    "argv, status, stream, needle",
    [
        (["--help"], 0, "out", "usage: lareid"),
        ([], 2, "err", "the following arguments are required: COMMAND"),
        (["no-such-command"], 2, "err", "invalid choice: 'no-such-command'"),
        (["--debug", "--bogus"], 2, "err", "usage: lareid"),
    ],
)
def test_help_and_usage_errors_import_no_torch(argv, status, stream, needle):
    report = run_entry_point(*argv)
    assert report["status"] == status and needle in report[stream], report
    assert report["loaded"] == []  # neither torch, transformers nor hf_lareid/__init__ (which registers Auto classes)


def test_top_level_help_lists_every_subcommand_with_its_help():
    flat = " ".join(run_entry_point("--help")["out"].split())  # argparse wraps the help column
    for name, subcommand in SUBCOMMANDS.items():
        assert f" {name} {subcommand.help} " in flat, name


def test_a_subcommand_imports_only_its_own_module():
    report = run_entry_point("push", "--help")
    assert report["status"] == 0 and report["out"].startswith("usage: lareid push")
    modules = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from hf_lareid_cli import main; main(['push', '--help']);"
            "print(sorted(m for m in sys.modules if m.startswith('hf_lareid.cli.')))",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout.splitlines()[-1]
    assert (
        "hf_lareid.cli.push" in modules
        and "hf_lareid.cli.demo" not in modules
        and "hf_lareid.cli.search" not in modules
    )


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_subcommand_module_follows_the_table_protocol(name):
    module = importlib.import_module(SUBCOMMANDS[name].module)
    assert module.EXAMPLE.startswith(f"lareid {name}")
    assert hasattr(module, "main") or (callable(module.add_arguments) and callable(module.run))
    assert len(SUBCOMMANDS[name].help) <= 100  # one line in `lareid --help`


def test_import_hf_lareid_still_registers_the_model_with_automodel(tiny_model_dir):
    script = (
        "import hf_lareid\n"
        "from transformers import AutoModel\n"
        f"print(type(AutoModel.from_pretrained({str(tiny_model_dir)!r})).__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-1] == "LATransformerForReID"


def test_train_help_is_short_with_the_packages_flags_and_an_example(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: lareid train ")
    assert out.index("Example:") < out.index("--setup SETUP")  # the example comes before the flags
    assert "lareid train --setup tiny" in out
    for flag in ("--setup", "--backbone", "--dataset", "--data_dir", "--output_dir", "--max_steps", "--disable_tqdm"):
        assert flag in out, flag
    assert "--adam_beta1" not in out and "--help-all" in out
    assert len(out.splitlines()) < 200

    assert main(["train", "--help-all"]) == 0
    full = capsys.readouterr().out
    assert full.startswith("usage: lareid train ") and "--adam_beta1" in full and "--setup" in full
    assert len(full.splitlines()) > 2 * len(out.splitlines())


def test_train_usage_errors_name_lareid_train(tmp_path, capsys):
    assert main(["train", "--output_dir", str(tmp_path), "--max_steps", "many"]) == 2
    err = capsys.readouterr().err
    assert "lareid train: error: argument --max_steps" in err


def test_subcommand_parser_is_built_from_the_module(capsys):
    parser = build_subcommand_parser("export-onnx")
    assert parser.prog == "lareid export-onnx"
    args = parser.parse_args(["model-dir", "out.onnx", "--opset", "18"])
    assert (args.model, args.output, args.opset) == ("model-dir", "out.onnx", 18)
