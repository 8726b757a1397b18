"""benchmarks/_common.write_results (the CSV columns every benchmark writes) and benchmarks/make_tables.py."""

import csv
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import make_tables  # noqa: E402
from _common import ENVIRONMENT_COLUMNS, write_results  # noqa: E402

ROWS = [
    {"batch": 8, "method": "plain loop", "baseline": True, "seconds": 2.0, "speedup": 1.0, "note": None},
    {"batch": 8, "method": "fast | path", "baseline": False, "seconds": 0.123456789, "speedup": 16.2, "note": "ok"},
]


def read(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def test_rows_carry_cpu_versions_date_and_commit_then_config_and_figures(results_dir):
    path = write_results("demo", ROWS, command=["benchmarks/bench_demo.py", "--batch", "8"])
    assert path == results_dir / "demo.csv"
    header, rows = read(path)
    assert header == [*ENVIRONMENT_COLUMNS, "batch", "method", "baseline", "seconds", "speedup", "note"]
    assert len(rows) == 2
    for row in rows:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["date"])
        assert re.fullmatch(r"([0-9a-f]{4,40}(-dirty)?|unknown)", row["commit"])
        assert row["cpu"] and row["python"].count(".") == 2 and int(row["cores"]) >= 1
        assert set(row["cpu_flags"].split()) <= {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}
        for library in ("torch", "transformers", "onnxruntime", "faiss"):
            assert row[library]  # a version, or "not installed"
        assert row["command"] == "python benchmarks/bench_demo.py --batch 8"
    assert [row["baseline"] for row in rows] == ["True", "False"]
    assert rows[1]["method"] == "fast | path" and rows[1]["seconds"] == "0.123457"  # 6 significant digits
    assert rows[0]["seconds"] == "2.0" and rows[0]["batch"] == "8"  # a float stays a float
    assert rows[0]["note"] == "" and rows[1]["note"] == "ok"
    assert rows[0]["date"] == rows[1]["date"]  # one run, one environment


def test_a_second_run_appends_and_new_columns_rewrite_the_file(results_dir):
    write_results("demo", ROWS)
    write_results("demo", [{**ROWS[0], "peak_gb": 1.5}])
    header, rows = read(results_dir / "demo.csv")
    assert header[-1] == "peak_gb" and len(rows) == 3
    assert [row["peak_gb"] for row in rows] == ["", "", "1.5"]
    assert rows[0]["method"] == "plain loop" and rows[1]["seconds"] == "0.123457"  # earlier rows kept


def test_a_table_needs_a_baseline_row_and_foreign_files_are_refused(results_dir):
    with pytest.raises(ValueError, match="baseline"):
        write_results("demo", [{**ROWS[1]}])
    with pytest.raises(ValueError, match="baseline"):
        write_results("demo", [{"method": "no flag", "seconds": 1.0}])
    results_dir.mkdir(parents=True)
    foreign = results_dir / "mine.csv"
    foreign.write_text("name,value\nx,1\n")
    with pytest.raises(ValueError, match="not a benchmark results table"):
        write_results("mine", ROWS)
    assert foreign.read_text() == "name,value\nx,1\n"
    assert not (results_dir / "demo.csv").exists()


def test_make_tables_renders_the_latest_run_between_the_markers(results_dir, tmp_path, monkeypatch):
    write_results("demo", [{**ROWS[0], "seconds": 99.0}], command=["bench_demo.py", "--old"])
    header, rows = read(results_dir / "demo.csv")
    rows[0]["date"] = "2000-01-01T00:00:00Z"  # an earlier run
    with open(results_dir / "demo.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    write_results("demo", ROWS, command=["bench_demo.py"])
    write_results("another", [{"size": 20000, "baseline": True, "qps": 1234.5, "recall": 0.98765}])
    page = tmp_path / "benchmarks.md"
    page.write_text("# Title\n\nintro\n\n<!-- tables:start -->\nold table\n<!-- tables:end -->\n\nfooter\n")

    assert make_tables.main(["--results_dir", str(results_dir), "--page", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("# Title\n\nintro\n\n<!-- tables:start -->\n") and text.endswith(
        "<!-- tables:end -->\n\nfooter\n"
    )
    assert "old table" not in text and "99.0" not in text and "--old" not in text  # only the latest run
    assert text.index("### another") < text.index("### demo")
    lines = text.splitlines()
    demo = lines.index("### demo")
    assert lines[demo + 2] == "| batch | method | baseline | seconds | speedup | note |"  # empty in every row: omitted
    assert lines[demo + 3] == "|---|---|---|---|---|---|"
    assert lines[demo + 4] == "| 8 | plain loop | baseline | 2.00 | 1.00 |  |"
    assert lines[demo + 5] == "| 8 | fast \\| path |  | 0.123 | 16.2 | ok |"
    environment = lines[demo + 7]
    assert environment.startswith("`python bench_demo.py` on ") and ", commit `" in environment
    assert "torch " in environment and "faiss " in environment
    assert "| 20,000 | baseline | 1,234 | 0.988 |" in text

    again = text
    assert make_tables.main(["--results_dir", str(results_dir), "--page", str(page)]) == 0
    assert page.read_text() == again  # idempotent


def test_make_tables_refuses_a_page_without_markers(results_dir, tmp_path, capsys):
    write_results("demo", ROWS)
    page = tmp_path / "benchmarks.md"
    page.write_text("# no markers\n")
    assert make_tables.main(["--results_dir", str(results_dir), "--page", str(page)]) == 1
    assert page.read_text() == "# no markers\n"
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(page) in error and "<!-- tables:start -->" in error
