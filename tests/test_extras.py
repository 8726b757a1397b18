"""Optional parts are extras: matplotlib (`plots`) and evaluate (`evaluate`); a missing one is named in one line."""

import configparser
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hf_lareid.evaluation import evaluate_reid, load_reid_metric

REPO = Path(__file__).resolve().parents[1]


def run_without(modules, code):
    """Runs `code` in a fresh interpreter where importing any of `modules` fails, as if not installed."""
    blocker = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in modules)
    return subprocess.run([sys.executable, "-c", blocker + code], capture_output=True, text=True, timeout=600)


def test_setup_cfg_makes_matplotlib_and_evaluate_extras():
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    core = [line.split(">")[0].split("=")[0] for line in setup["options"]["install_requires"].split()]
    extras = {name: setup["options.extras_require"][name].split() for name in ("plots", "evaluate", "dev")}
    assert "matplotlib" not in core and "evaluate" not in core
    assert {"torch", "transformers", "datasets", "faiss-cpu", "safetensors", "huggingface_hub", "kornia"} <= set(core)
    assert extras["plots"] == ["matplotlib>=3.8"] and extras["evaluate"] == ["evaluate>=0.4.3"]
    assert {"matplotlib>=3.8", "evaluate>=0.4.3"} <= set(extras["dev"])  # what `make demo` / `make test` install
    assert '-e ".[dev]"' in (REPO / "Makefile").read_text()


def test_the_core_works_without_the_extras(tiny_model_dir):
    result = run_without(
        ["matplotlib", "evaluate"],
        "import hf_lareid\nfrom transformers import AutoModel\n"
        f"model = AutoModel.from_pretrained({str(tiny_model_dir)!r})\n"
        "from hf_lareid.evaluation import evaluate_reid\nprint(type(model).__name__)\n",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-1] == "LATransformerForReID"


def test_missing_matplotlib_names_the_plots_extra():
    result = run_without(["matplotlib"], "import hf_lareid.analysis.pictures\n")
    message = result.stderr.strip().splitlines()[-1]
    assert "MissingExtraError" in message and "'plots' extra" in message and 'pip install ".[plots]"' in message


def test_lareid_demo_without_matplotlib_is_one_line_before_any_training(tmp_path):
    result = run_without(
        ["matplotlib"],
        f"from hf_lareid_cli import main\nraise SystemExit(main(['demo', '--quick', '--output_dir', {str(tmp_path / 'demo')!r}]))\n",
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line, no traceback
    assert result.stderr.startswith("lareid demo: error: ") and "'plots' extra" in result.stderr
    assert not (tmp_path / "demo").exists()  # refused before generating or training anything


def test_missing_evaluate_names_the_evaluate_extra():
    result = run_without(["evaluate"], "from hf_lareid.evaluation import load_reid_metric\nload_reid_metric()\n")
    message = result.stderr.strip().splitlines()[-1]
    assert "MissingExtraError" in message and "'evaluate' extra" in message


def test_load_reid_metric_gives_evaluate_reids_numbers():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(30, 8)).astype(np.float32)
    ids, cams = rng.integers(0, 4, 30), rng.integers(0, 3, 30)
    is_query = np.arange(30) < 8
    result = load_reid_metric().compute(
        embeddings=features.tolist(),
        person_ids=ids.tolist(),
        camera_ids=cams.tolist(),
        is_query=is_query.tolist(),
        max_rank=5,
    )
    expected = evaluate_reid(features[:8], features[8:], ids[:8], ids[8:], cams[:8], cams[8:], max_rank=5)
    assert result["mAP"] == pytest.approx(expected["mAP"], abs=1e-9)
