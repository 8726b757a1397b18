"""Renders the benchmark results (`benchmarks/results/*.csv`) into Markdown tables in `docs/benchmarks.md`.

Each CSV (written by `_common.write_results`) becomes one table of its latest run: the configuration and measured
columns (columns empty in every row left out), the baseline rows marked, and below it one line with the command, the
date, the commit, the CPU and the library versions. The tables replace what stands between the markers
`<!-- tables:start -->` and `<!-- tables:end -->` of the page; the rest of the page is left as it is.

    python benchmarks/make_tables.py
    python benchmarks/make_tables.py --results_dir /tmp/results --page /tmp/benchmarks.md
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

from _common import ENVIRONMENT_COLUMNS, REPO_ROOT, RESULTS_DIR

START, END = "<!-- tables:start -->", "<!-- tables:end -->"
PAGE = REPO_ROOT / "docs" / "benchmarks.md"


def read_latest_run(path: Path) -> list[dict[str, str]]:
    """The rows of the last run in a results CSV (those sharing the date and commit of its last row)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple((reader.fieldnames or [])[: len(ENVIRONMENT_COLUMNS)]) != ENVIRONMENT_COLUMNS:
            raise ValueError(f"{path} is not a benchmark results table: its header lacks the environment columns")
        rows = list(reader)
    if not rows:
        raise ValueError(f"{path} has a header but no rows")
    last = (rows[-1]["date"], rows[-1]["commit"])
    return [row for row in rows if (row["date"], row["commit"]) == last]


def format_value(text: str) -> str:
    """A CSV cell for a Markdown table: integers with thousands separators, floats to about 3 significant digits,
    True/False as yes/no, `|` escaped."""
    if text in ("True", "False"):
        return "yes" if text == "True" else "no"
    try:
        return f"{int(text):,}"
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text.replace("|", "\\|")
    if not math.isfinite(number) or number == 0:
        return f"{number:g}"
    magnitude = abs(number)
    if magnitude >= 100:
        return f"{number:,.0f}"
    if magnitude >= 10:
        return f"{number:.1f}"
    if magnitude >= 1:
        return f"{number:.2f}"
    return f"{number:.3g}"


def render_table(path: Path) -> str:
    """`### <name>`, the Markdown table of the latest run of `path`, and its environment line."""
    rows = read_latest_run(path)
    columns = [
        column
        for column in rows[0]
        if column not in ENVIRONMENT_COLUMNS and any(row.get(column) not in ("", None) for row in rows)
    ]
    lines = [f"### {path.stem}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [
            ("baseline" if row[column] == "True" else "")
            if column == "baseline"
            else format_value(row.get(column) or "")
            for column in columns
        ]
        lines.append("| " + " | ".join(cells) + " |")
    run = rows[0]
    flags = f"{run['cpu_flags']}, " if run["cpu_flags"] else ""
    lines += [
        "",
        f"`{run['command']}` on {run['date']}, commit `{run['commit']}`; {run['cpu']} ({flags}{run['cores']} cores); "
        f"Python {run['python']}, torch {run['torch']}, transformers "
        f"{run['transformers']}, onnxruntime {run['onnxruntime']}, faiss {run['faiss']}.",
    ]
    return "\n".join(lines)


def render_tables(results_dir: Path) -> str:
    """Every `*.csv` of `results_dir`, in name order, rendered by `render_table` and separated by blank lines."""
    paths = sorted(Path(results_dir).glob("*.csv"))
    if not paths:
        raise ValueError(f"no *.csv in {results_dir}: run a benchmark first (python benchmarks/bench_cli.py)")
    return "\n\n".join(render_table(path) for path in paths)


def fill_page(page_text: str, tables: str, page_name: str = "the page") -> str:
    """`page_text` with what stands between `START` and `END` replaced by `tables`."""
    before, start, rest = page_text.partition(START)
    _, end, after = rest.partition(END)
    if not start or not end:
        raise ValueError(
            f"{page_name} lacks the markers {START} ... {END} (in this order): add them where the tables go"
        )
    return f"{before}{START}\n\n{tables}\n\n{END}{after}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results_dir", type=Path, default=RESULTS_DIR, help="folder of the CSVs (%(default)s)")
    parser.add_argument("--page", type=Path, default=PAGE, help="the page to fill (%(default)s)")
    args = parser.parse_args(argv)
    try:
        tables = render_tables(args.results_dir)
        page = fill_page(args.page.read_text(encoding="utf-8"), tables, str(args.page))
    except (OSError, ValueError) as error:  # each names its file
        print(f"make_tables: {error}", file=sys.stderr)
        return 1
    args.page.write_text(page, encoding="utf-8")
    print(f"{args.page}: {len(list(args.results_dir.glob('*.csv')))} tables written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
