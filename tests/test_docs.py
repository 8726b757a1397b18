"""The documentation's examples run: every ```python block with `>>>` in README.md and docs/*.md, and the Example
sections of the package's docstrings, are doctests; every `lareid` subcommand and flag of the ```bash blocks exists.

A markdown block preceded by `<!-- no-test -->` is skipped: only for examples that need the network or a GPU.
"""

from __future__ import annotations

import argparse
import doctest
import importlib
import pkgutil
import re
import shlex
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
NO_TEST = "<!-- no-test -->"
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def code_blocks(path: Path, language: str) -> list[tuple[int, str]]:
    """(first line number, text) of each fenced `language` block of `path` not marked `<!-- no-test -->`."""
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        if match.group(1) != language:
            continue
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
        if before.strip() != NO_TEST:
            blocks.append((text.count("\n", 0, match.start()) + 2, match.group(2)))
    return blocks


class FencedDocTestParser(doctest.DocTestParser):
    """Docstrings wrap their examples in ```python fences: a fence line ends an example's expected output."""

    def parse(self, string, name="<string>"):
        return super().parse(re.sub(r"^[ \t]*```\w*[ \t]*$", "", string, flags=re.MULTILINE), name)


def run_doctests(tests: list[doctest.DocTest], shared_globs: dict | None = None) -> str:
    """Runs `tests` in order; returns the report of the failures ("" when every example passed).

    With `shared_globs`, each test starts from the names the tests before it defined (the blocks of one page).
    """
    failures = []
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    for test in tests:
        if shared_globs is not None:
            test.globs.update(shared_globs)
        runner.run(test, out=failures.append, clear_globs=False)
        if shared_globs is not None:
            shared_globs.update(test.globs)
    return "".join(failures)


def quick_demo(folder: Path) -> None:
    """What the README's tour runs first: `lareid demo --quick --output_dir ./lareid-demo`."""
    from hf_lareid_cli import main

    assert main(["demo", "--quick", "--output_dir", str(folder / "lareid-demo")]) == 0


# Steps a page's examples follow on from (the shell commands before them), run in the examples' folder.
PAGE_SETUP = {"README.md": quick_demo}


@pytest.mark.parametrize(
    "path", [p for p in DOC_FILES if any(">>>" in b for _, b in code_blocks(p, "python"))], ids=lambda p: p.name
)
def test_markdown_examples_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if path.name in PAGE_SETUP:
        PAGE_SETUP[path.name](tmp_path)
    parser, globs = doctest.DocTestParser(), {"__name__": "__main__"}
    tests = [
        parser.get_doctest(block, {}, f"{path.name}:{line}", str(path), line - 1)
        for line, block in code_blocks(path, "python")
        if ">>>" in block
    ]
    assert sum(len(test.examples) for test in tests) > 0
    report = run_doctests(tests, globs)
    assert not report, report


def test_only_a_few_blocks_are_untested():
    """`<!-- no-test -->` is for the network or a GPU only: rare."""
    marked = sum(p.read_text().count(NO_TEST) for p in DOC_FILES)
    assert marked <= 6, f"{marked} documentation blocks are marked {NO_TEST}"


def package_modules() -> list[str]:
    import hf_lareid

    names = ["hf_lareid"]
    for info in pkgutil.walk_packages(hf_lareid.__path__, "hf_lareid."):
        names.append(info.name)
    return sorted(names)


def import_or_skip(name: str):
    """The module `name`, or a skip when it needs an extra (a third-party package) that is not installed."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name and not error.name.startswith("hf_lareid"):
            pytest.skip(f"{name} needs {error.name}, which is not installed")
        raise


@pytest.mark.parametrize("name", package_modules())
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    module = import_or_skip(name)
    monkeypatch.chdir(tmp_path)
    tests = [
        t
        for t in doctest.DocTestFinder(parser=FencedDocTestParser(), exclude_empty=True).find(module, name)
        if t.examples
    ]
    tests = [t for t in tests if getattr(_defining_module(t), "__name__", name) == name]
    if not tests:
        pytest.skip(f"{name} has no docstring examples")
    report = run_doctests(tests)
    assert not report, report


def _defining_module(test: doctest.DocTest):
    """The module a doctest's docstring was written in (re-exported names are tested where they are defined)."""
    filename = test.filename or ""
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) == filename:
            return module
    return None


# ---------------------------------------------------------------------------------------------- shell examples
def lareid_commands() -> list[tuple[str, int, list[str]]]:
    """(file name, line, arguments) of every `lareid ...` command line in the ```bash blocks."""
    commands = []
    for path in DOC_FILES:
        for line, block in code_blocks(path, "bash"):
            logical = re.sub(r"\\\n\s*", " ", block)
            for offset, text in enumerate(logical.splitlines()):
                text = text.split("#", 1)[0].strip()
                if not text.startswith("lareid "):
                    continue
                commands.append((path.name, line + offset, shlex.split(text)[1:]))
    return commands


def subcommand_flags(name: str) -> set[str]:
    """Every option string the parser of `lareid NAME` accepts (`train`: every TrainingArguments flag too)."""
    from hf_lareid_cli import SUBCOMMANDS, build_subcommand_parser

    if name == "train":  # HfArgumentParser over the training dataclasses
        from hf_lareid.scripts.train import build_parser

        parser = build_parser(prog="lareid train")
    else:
        parser = build_subcommand_parser(name, importlib.import_module(SUBCOMMANDS[name].module))
    return parser_flags(parser)


def parser_flags(parser: argparse.ArgumentParser) -> set[str]:
    """The option strings of `parser` and of its own subcommands (`lareid video index ...`)."""
    flags = set()
    for action in parser._actions:
        flags.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                flags.update(parser_flags(subparser))
    return flags


def test_shell_examples_use_real_subcommands_and_flags():
    from hf_lareid_cli import SUBCOMMANDS

    commands = lareid_commands()
    assert len(commands) >= 5
    flags: dict[str, set[str]] = {}
    problems = []
    for file_name, line, arguments in commands:
        arguments = [a for a in arguments if a != "--debug"]
        if arguments in (["--help"], ["-h"]):
            continue
        if not arguments or arguments[0] not in SUBCOMMANDS:
            problems.append(f"{file_name}:{line}: no subcommand {arguments[:1]}")
            continue
        known = flags.setdefault(arguments[0], subcommand_flags(arguments[0]))
        for argument in arguments[1:]:
            flag = argument.split("=", 1)[0]
            if flag.startswith("--") and flag not in known:
                problems.append(f"{file_name}:{line}: lareid {arguments[0]} has no flag {flag}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------- links and anchors
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def without_code(text: str) -> str:
    """`text` with its fenced blocks and inline code spans blanked out (links there are examples, not links)."""
    text = FENCE.sub(lambda match: "\n" * match.group(0).count("\n"), text)
    return re.sub(r"`[^`\n]*`", "``", text)


def heading_anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of `path`: lower case, punctuation dropped, spaces to hyphens, and a
    `-1`, `-2`... suffix on repeats."""
    anchors: set[str] = set()
    for line in FENCE.sub("", path.read_text()).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
        anchor, repeat = slug, 0
        while anchor in anchors:
            repeat += 1
            anchor = f"{slug}-{repeat}"
        anchors.add(anchor)
    return anchors


def broken_links(path: Path, root: Path = REPO_ROOT) -> list[str]:
    """`file:line: target` for each relative link of `path` whose file, or whose `#anchor` in that file, is missing."""
    text = without_code(path.read_text())
    problems = []
    for match in LINK.finditer(text):
        target = match.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(root)}:{text.count(chr(10), 0, match.start()) + 1}: {target}"
        if not linked.exists():
            problems.append(f"{where} (no such file)")
        elif anchor and (linked.suffix != ".md" or anchor not in heading_anchors(linked)):
            problems.append(f"{where} (no such heading)")
    return problems


def test_heading_anchors_follow_github():
    page = REPO_ROOT / "docs" / "inference.md"
    anchors = heading_anchors(page)
    assert "the-lareid-embedding-pipeline" in anchors
    assert "provenance-what-a-vector-depends-on" in anchors


@pytest.mark.parametrize("path", [*DOC_FILES, REPO_ROOT / "CHANGELOG.md"], ids=lambda p: p.name)
def test_relative_links_and_anchors_resolve(path):
    problems = broken_links(path)
    assert not problems, "\n".join(problems)


def test_broken_links_are_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [gone](#nothing) [file](missing.md) `[code](x.md)`\n")
    assert [problem.split(": ", 1)[1] for problem in broken_links(page, tmp_path)] == [
        "#nothing (no such heading)",
        "missing.md (no such file)",
    ]
