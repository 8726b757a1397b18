"""How `lareid` behaves around the work: fast `--help` and usage errors (no torch), one line for a user's error and a
traceback for a bug, one error base for the package, no library progress bars, log lines apart from progress bars."""

from __future__ import annotations

import ast
import errno
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, run_cli

import hf_lareid
from hf_lareid.cli import _choices
from hf_lareid.cli.train import final_report
from hf_lareid.utils import errors
from hf_lareid_cli import BUG_HINT, SUBCOMMANDS, configure_logging, is_user_error, main

LIGHT_SUBCOMMANDS = sorted(SUBCOMMANDS)


def run_python(code: str) -> subprocess.CompletedProcess:
    """`python -c CODE` in a fresh interpreter (this test session's environment), its output as text."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def test_help_and_usage_errors_of_every_subcommand_import_no_torch():
    """`lareid NAME --help` exits 0 with the subcommand's usage, `lareid NAME --bogus` exits 2 (a usage error): torch,
    transformers and datasets never loaded."""
    result = run_python(
        f"""
        import contextlib, io, json, sys
        from hf_lareid_cli import main
        statuses = {{}}
        for name in {LIGHT_SUBCOMMANDS!r}:
            for flag in ("--help", "--bogus"):
                out, err = io.StringIO(), io.StringIO()
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    status = main([name, flag])
                statuses[name + " " + flag] = [status, out.getvalue() + err.getvalue()]
        print(json.dumps({{"statuses": statuses, "loaded": sorted(m for m in ("torch", "transformers", "datasets")
                                                                   if m in sys.modules)}}))
        """
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["loaded"] == []
    for name in LIGHT_SUBCOMMANDS:
        status, text = report["statuses"][f"{name} --help"]
        assert status == 0 and f"usage: lareid {name}" in text and "Example:" in text, text
        status, text = report["statuses"][f"{name} --bogus"]
        assert status == 2 and f"lareid {name}: error:" in text and "Traceback" not in text, text


def test_the_stored_train_flags_are_the_live_parsers(monkeypatch):
    """`lareid train --help`, `--help-all` and its usage errors come from train_flags.json (no torch import): it must
    say what the live HfArgumentParser says (regenerate with `hf_lareid.cli.train.write_flags_manifest()`)."""
    from hf_lareid.cli import train

    monkeypatch.setenv("COLUMNS", str(train.MANIFEST_COLUMNS))
    assert json.loads(train.FLAGS_MANIFEST.read_text(encoding="utf-8")) == train.flags_manifest()


def test_train_usage_errors_name_the_flag_and_accept_every_real_one(capsys):
    from hf_lareid.cli.train import answer_early

    answer_early(["--output_dir", "out", "--num_train_epochs", "2", "--output=x", "--setup=tiny"])  # returns: a run
    for argv, message in (
        (["--output_dir", "out", "--no_such_flag", "1"], "unrecognized arguments: --no_such_flag"),
        (["--max_steps", "2"], "required: --output_dir"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            answer_early(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_subcommand_still_runs_after_the_fast_parse(tmp_path):
    """The package's __init__ runs once the arguments parse: the command then works as before (a one-line error
    for a missing model folder, from a fresh interpreter)."""
    result = run_python(
        f"""
        import sys
        from hf_lareid_cli import main
        status = main(["export-onnx", {str(tmp_path / "nope")!r}, {str(tmp_path / "x.onnx")!r}])
        import hf_lareid
        print(status, hf_lareid.LATransformerForReID.__name__)
        """
    )
    assert result.stdout.split() == ["1", "LATransformerForReID"], result.stderr
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_the_choices_of_the_parsers_agree_with_their_owners():
    from hf_lareid.data import REID_DATASETS
    from hf_lareid.embedding.backends import AUTO_PREFERENCE, RUNTIMES
    from hf_lareid.evaluation import PROTOCOLS
    from hf_lareid.retrieval.faiss_index import INDEX_TYPES

    assert sorted(_choices.DATASETS) == sorted(REID_DATASETS)
    assert _choices.RUNTIMES == RUNTIMES and _choices.AUTO_CPU_ORDER == AUTO_PREFERENCE[("cpu", "fp32")]
    assert _choices.INDEX_TYPES == INDEX_TYPES and _choices.PROTOCOLS == PROTOCOLS


def test_train_with_an_unknown_flag_is_a_usage_error(tmp_path, capsys):
    status, _, err = run_cli("train", "--output_dir", tmp_path / "out", "--bogus_flag", "1", capsys=capsys)
    assert status == 2 and "usage:" in err and "unrecognized arguments: --bogus_flag 1" in err, err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


# ------------------------------------------------------------------ one error base
@pytest.mark.parametrize(
    ("name", "kind", "standard_base"),
    [
        ("hf_lareid.data.ReIDDataError", errors.InvalidInputError, ValueError),
        ("hf_lareid.utils.images.ImageReadError", errors.InvalidInputError, ValueError),
        ("hf_lareid.convert_original.ConversionError", errors.InvalidInputError, ValueError),
        ("hf_lareid.retrieval.FingerprintMismatchError", errors.InvalidInputError, ValueError),
        ("hf_lareid.retrieval.EmbeddingSettingsMismatchError", errors.InvalidInputError, ValueError),
        ("hf_lareid.web.service.WebAppError", errors.InvalidInputError, ValueError),
        ("hf_lareid.retrieval.CorruptIndexError", errors.DamagedFileError, ValueError),
        ("hf_lareid.utils.integrity.DamagedFileError", errors.DamagedFileError, OSError),
        ("hf_lareid.utils.integrity.ModelWeightsMismatchError", errors.DamagedFileError, OSError),
        ("hf_lareid.utils.extras.MissingExtraError", errors.MissingExtraError, ImportError),
        ("hf_lareid.utils.io.FolderBusyError", errors.LAReIDError, OSError),
    ],
)
def test_every_exception_of_the_package_has_the_one_base(name, kind, standard_base):
    """Each keeps its name, where it is imported from and the standard base callers catch; all are LAReIDErrors."""
    import importlib

    module, _, attribute = name.rpartition(".")
    error_class = getattr(importlib.import_module(module), attribute)
    assert issubclass(error_class, kind) and issubclass(error_class, errors.LAReIDError)
    assert issubclass(error_class, standard_base)
    assert is_user_error(error_class("bad input, and its fix"))


def test_the_error_classes_are_public():
    for name in errors.__all__:
        assert getattr(hf_lareid, name) is getattr(errors, name)


@pytest.mark.parametrize(
    ("error", "user"),
    [
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "x.jpg"), True),
        (PermissionError(errno.EACCES, "Permission denied", "x.jpg"), True),
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (OSError(errno.ELOOP, "Too many levels of symbolic links"), True),
        (OSError("Can't load the configuration of 'my-model'"), True),  # how transformers reports a bad model name
        (OSError(errno.EBADF, "Bad file descriptor"), False),
        (TypeError("unsupported operand"), False),
        (KeyError("rank1"), False),
        (ValueError("operands could not be broadcast"), False),  # not raised by the package's code
        (errors.InvalidInputError("--threshold 2 is not in [-1, 1]"), True),  # how the package's checks report
    ],
)
def test_user_errors_and_bugs_are_told_apart(error, user):
    assert is_user_error(error) is user


def test_a_user_error_is_one_line_and_a_bug_a_traceback(tmp_path, capsys, monkeypatch):
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    (index_dir / "gallery_config.json").write_text("{ not json")
    query = tmp_path / "query.jpg"
    query.write_bytes(b"")
    status, _, err = run_cli("search", "--index_dir", index_dir, query, capsys=capsys)
    assert_one_line_error(status, err, "gallery_config.json")  # CorruptIndexError: a damaged file

    import hf_lareid.hub.push as push

    def broken(model_dir):
        return None + 1  # an injected bug

    monkeypatch.setattr(push, "files_to_upload", broken)
    status, out, err = run_cli("push", tmp_path, "me/model", "--dry_run", capsys=capsys)
    assert status == 1 and out == ""
    assert "Traceback (most recent call last)" in err and "TypeError: unsupported operand" in err, err
    assert err.strip().splitlines()[-1] == f"lareid push: internal error: {BUG_HINT}"
    with pytest.raises(TypeError):  # --debug: the traceback of everything, as Python shows it
        main(["--debug", "push", str(tmp_path), "me/model", "--dry_run"])


def test_a_value_error_the_package_raises_is_one_line(tiny_model_dir, market_dir, tmp_path, capsys):
    status, _, err = run_cli(
        "evaluate", tiny_model_dir, "--dataset", "market1501", "market1501", "--data_dir", market_dir, capsys=capsys
    )
    assert status == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_a_plain_value_error_in_package_code_is_a_bug(tmp_path, capsys, monkeypatch):
    """A wrong unpacking in the package's own code raises a plain ValueError: a bug, shown with its traceback."""
    import hf_lareid.hub.push as push

    namespace: dict = {}
    # Compiled under push.py's file name, so the ValueError is raised from a frame in the package.
    exec(compile("def broken(model_dir):\n    first, second = [model_dir]\n", push.__file__, "exec"), namespace)
    monkeypatch.setattr(push, "files_to_upload", namespace["broken"])
    status, out, err = run_cli("push", tmp_path, "me/model", "--dry_run", capsys=capsys)
    assert status == 1 and out == ""
    assert "Traceback (most recent call last)" in err and "ValueError: not enough values to unpack" in err, err
    assert err.strip().splitlines()[-1] == f"lareid push: internal error: {BUG_HINT}"


# The `raise ValueError(...)` left in the package: internal invariants, a bug when they fire. A check of what a user
# or caller gives raises `InvalidInputError` (also a ValueError) instead, so that `lareid` prints it as one line.
INTERNAL_VALUE_ERRORS = {
    ("hf_lareid/modeling_lareid.py", "the 'bottleneck' embedding needs the row heads' bottleneck features."),
    ("hf_lareid/embedding/onnx_export.py", "onnxruntime returned shape "),
}


def raised_value_errors(paths, base):
    """`(path relative to base, the message's first literal text)` of each `raise ValueError(...)` in `paths`."""
    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Raise) and node.exc is not None):
                continue
            call = node.exc
            name = call.func if isinstance(call, ast.Call) else call
            if isinstance(name, ast.Name) and name.id == "ValueError":
                first = call.args[0] if isinstance(call, ast.Call) and call.args else None
                if isinstance(first, ast.JoinedStr):
                    first = next((part for part in first.values if isinstance(part, ast.Constant)), None)
                text = first.value if isinstance(first, ast.Constant) else ""
                found.add((path.relative_to(base).as_posix(), text))
    return found


def test_every_plain_value_error_of_the_package_is_an_internal_invariant():
    """The package and the console script: a new `raise ValueError` is either a user's error (`InvalidInputError`) or
    an invariant added to `INTERNAL_VALUE_ERRORS` in review."""
    package = Path(hf_lareid.__file__).parent
    paths = [*sorted(package.rglob("*.py")), Path(sys.modules["hf_lareid_cli"].__file__)]
    assert raised_value_errors(paths, package.parent) == INTERNAL_VALUE_ERRORS


def test_the_value_error_scan_finds_raises(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "checks.py").write_text(
        "def check(x):\n"
        "    if x:\n"
        "        raise ValueError(f'bad {x}: fix it')\n"
        "    raise InvalidInputError('fine')\n"
        "def other():\n"
        "    raise ValueError\n"
    )
    assert raised_value_errors([tmp_path / "pkg" / "checks.py"], tmp_path) == {
        ("pkg/checks.py", "bad "),
        ("pkg/checks.py", ""),
    }


# ------------------------------------------------------------------ noise
def test_no_transformers_progress_bars_without_debug(capsys):
    from transformers.utils import logging as transformers_logging

    try:
        configure_logging(debug=False)
        for _ in transformers_logging.tqdm(range(3), desc="Loading weights"):
            pass
        assert "Loading weights" not in capsys.readouterr().err
        configure_logging(debug=True)
        for _ in transformers_logging.tqdm(range(3), desc="Loading weights"):
            pass
        assert "Loading weights" in capsys.readouterr().err
    finally:
        transformers_logging.set_tqdm_hook(None)


def test_log_lines_do_not_stick_to_progress_bars():
    """A log line written while a bar is drawn starts on a line of its own (the logs go through tqdm.write)."""
    result = run_python(
        """
        import logging, sys, types
        from tqdm.auto import tqdm
        import hf_lareid_cli

        def run(args):
            bar = tqdm(total=2, desc="Embedding", file=sys.stderr)
            bar.update(1)
            logging.getLogger("hf_lareid.demo").info("a log line")
            bar.update(1)
            bar.close()
            return 0

        command = types.ModuleType("bar_and_log")
        command.EXAMPLE, command.add_arguments, command.run = "lareid bar-and-log", lambda parser: None, run
        sys.modules["bar_and_log"] = command
        hf_lareid_cli.SUBCOMMANDS["bar-and-log"] = hf_lareid_cli.Subcommand("bar_and_log", "a bar and a log line")
        sys.exit(hf_lareid_cli.main(["bar-and-log"]))
        """
    )
    assert result.returncode == 0, result.stderr
    segments = [line.split("\r")[-1] for line in result.stderr.split("\n")]
    assert "a log line" in segments, repr(result.stderr)


def test_train_ends_with_where_the_model_is_in_percent():
    line = final_report("./out", {"eval_rank1": 0.5, "eval_mAP": 0.25, "eval_mINP": 0.125, "epoch": 1.0})
    assert line == "saved the model to ./out; final evaluation: Rank-1 50.0%, mAP 25.0%, mINP 12.5%"
