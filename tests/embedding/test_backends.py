"""`runtime=`: ONNX Runtime and OpenVINO embed as PyTorch eager does; "auto" follows its table; the ONNX cache."""

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from cli_helpers import run_index
from model_factories import tiny_config
from transformers import pipeline

import hf_lareid  # noqa: F401  registers the pipeline task
from hf_lareid import LATransformerForReID, ReIDEncoder
from hf_lareid.data import generate_synthetic_reid, load_reid_dataset
from hf_lareid.embedding import extract_features
from hf_lareid.embedding.backends import (
    AUTO_PREFERENCE,
    auto,
    choose_runtime,
    make_embedder,
    onnx_cache_dir,
    onnx_cache_key,
    runtime_available,
)
from hf_lareid.retrieval import GalleryIndex
from hf_lareid.utils.extras import MissingExtraError

ONNX_RUNTIMES = ["onnxruntime", "openvino"]
ATOL = 1e-4


@pytest.fixture(scope="module")
def model():
    """The tiny model of conftest's `tiny_model` (same seed, so the same ONNX cache entry: exported once)."""
    torch.manual_seed(0)
    return LATransformerForReID(tiny_config()).eval()


@pytest.fixture(scope="module")
def processor():
    from transformers import ViTImageProcessorPil

    return ViTImageProcessorPil(size={"height": 64, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (60 + 7 * i, 30 + 3 * i, 3), dtype=np.uint8) for i in range(5)]


@pytest.mark.parametrize("runtime", ONNX_RUNTIMES)
@pytest.mark.parametrize("flip", [False, True])
def test_extract_features_matches_pytorch_eager(model, processor, images, runtime, flip):
    options = {"image_processor": processor, "flip": flip, "progress": False, "batch_size": 2, "bf16": False}
    expected = extract_features(model, images, runtime="torch", **options).embeddings
    got = extract_features(model, images, runtime=runtime, **options).embeddings
    assert got.shape == expected.shape == (5, model.config.embedding_dim)
    assert np.abs(got - expected).max() < ATOL
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("runtime", ONNX_RUNTIMES)
def test_pipeline_matches_pytorch_eager_and_leaves_the_model_folder_alone(tiny_model_dir, images, runtime):
    before = sorted((p.name, p.stat().st_mtime_ns) for p in tiny_model_dir.rglob("*"))
    embedder = pipeline("lareid-embedding", model=str(tiny_model_dir), runtime=runtime)
    got = np.stack(embedder(images, return_tensors="np"))
    expected = np.stack(embedder(images, return_tensors="np", runtime="torch"))
    assert np.abs(got - expected).max() < ATOL
    assert sorted((p.name, p.stat().st_mtime_ns) for p in tiny_model_dir.rglob("*")) == before
    assert not any(p.suffix == ".onnx" for p in tiny_model_dir.rglob("*"))


def test_lareid_index_with_each_runtime_stores_the_pytorch_embeddings(
    tiny_model_dir, model, processor, tmp_path, capsys, monkeypatch
):
    from hf_lareid.embedding import precision

    monkeypatch.setattr(precision, "bf16_pays", lambda device="cpu": False)  # fp32 runtimes compared with fp32 torch
    people = generate_synthetic_reid(
        tmp_path / "market", num_ids=4, num_cameras=2, images_per_camera=2, image_size=(64, 32)
    )
    queries = extract_features(
        model,
        load_reid_dataset("market1501", data_dir=people)["query"],
        image_processor=processor,
        runtime="torch",
        bf16=False,
        progress=False,
    ).embeddings
    scores = {}
    for runtime in ["torch", *ONNX_RUNTIMES]:
        index_dir = tmp_path / f"index-{runtime}"
        status, _, err = run_index(
            tiny_model_dir,
            people,
            index_dir,
            "--runtime",
            runtime,
            capsys=capsys,
        )
        assert status == 0, err
        index = GalleryIndex.load(index_dir)
        assert index.runtime_settings["runtime"] == runtime
        hits = index.search(queries, k=len(index))
        scores[runtime] = (hits.indices, hits.scores)
    for runtime in ONNX_RUNTIMES:
        np.testing.assert_array_equal(scores[runtime][0], scores["torch"][0])
        assert np.abs(scores[runtime][1] - scores["torch"][1]).max() < ATOL


@pytest.mark.parametrize(
    ("installed", "device", "bf16", "expected"),
    [
        ({"onnxruntime", "openvino"}, "cpu", False, "openvino"),
        ({"onnxruntime"}, "cpu", False, "onnxruntime"),
        (set(), "cpu", False, "torch"),
        ({"onnxruntime", "openvino"}, "cpu", True, "torch"),
        ({"onnxruntime", "openvino"}, "cuda", False, "torch"),
    ],
)
def test_auto_follows_the_preference_table_and_logs_its_pick(monkeypatch, caplog, installed, device, bf16, expected):
    monkeypatch.setattr(auto, "runtime_available", lambda name: name == "torch" or name in installed)
    with caplog.at_level(logging.INFO, logger="hf_lareid.embedding.backends.auto"):
        assert choose_runtime("auto", device, bf16) == expected
    assert not caplog.records  # not said at INFO: every search and evaluation would repeat it
    with caplog.at_level(logging.DEBUG, logger="hf_lareid.embedding.backends.auto"):
        assert choose_runtime("auto", device, bf16) == expected
    (message,) = [record.getMessage() for record in caplog.records]
    assert f"picked {expected} for {device}" in message
    assert AUTO_PREFERENCE[(device, "bf16" if bf16 else "fp32")][0] in message  # the order it followed


def test_a_missing_explicit_runtime_names_its_extra_and_auto_falls_back(monkeypatch, model):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now raises ImportError
    with pytest.raises(MissingExtraError) as error:
        choose_runtime("openvino")
    assert "'openvino' extra" in str(error.value) and "\n" not in str(error.value)
    monkeypatch.setattr(auto, "runtime_available", lambda name: name == "torch")
    assert make_embedder(model, "auto").name == "torch"
    with pytest.raises(ValueError, match="runtime must be"):
        choose_runtime("tensorrt")


def test_the_export_is_cached_once_checked_and_redone_when_damaged(model, monkeypatch, tmp_path, caplog):
    from hf_lareid.embedding import onnx_export

    monkeypatch.setenv("HF_LAREID_CACHE", str(tmp_path / "cache"))
    exports = []
    real_export = onnx_export.export_onnx
    monkeypatch.setattr(onnx_export, "export_onnx", lambda *a, **k: exports.append(1) or real_export(*a, **k))
    pixels = torch.randn(3, 3, 64, 32)
    first = make_embedder(model, "onnxruntime").embed(pixels)
    path = onnx_cache_dir() / onnx_cache_key(model) / "model.onnx"
    assert path.is_file() and str(path).startswith(str(tmp_path / "cache" / "onnx"))
    assert json.loads((path.parent / "manifest.json").read_text())["producer"] == "hf-lareid"
    mtime = path.stat().st_mtime_ns
    assert torch.allclose(make_embedder(model, "openvino").embed(pixels), first, atol=ATOL)
    assert len(exports) == 1 and path.stat().st_mtime_ns == mtime  # reused by the second runtime

    with open(path, "r+b") as stream:  # damage one byte in the middle of the weights
        stream.seek(os.path.getsize(path) // 2)
        byte = stream.read(1)
        stream.seek(-1, os.SEEK_CUR)
        stream.write(bytes([byte[0] ^ 0xFF]))
    # make_embedder keeps nothing in memory: as in a new process, the graph is read from the cache folder again
    with caplog.at_level(logging.WARNING, logger="hf_lareid.embedding.backends.graph_cache"):
        again = make_embedder(model, "onnxruntime").embed(pixels)
    assert len(exports) == 2 and "does not match its recorded SHA-256" in caplog.text
    assert torch.allclose(again, first, atol=1e-6)


def test_a_loaded_graph_is_reused_until_the_weights_change(model, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_LAREID_CACHE", str(tmp_path / "cache"))
    copy = LATransformerForReID(tiny_config()).eval()
    copy.load_state_dict(model.state_dict())
    encoder = ReIDEncoder(copy, runtime="onnxruntime")
    embedder = encoder.embedder
    assert encoder.embedder is embedder  # no hashing, checking or compiling again
    assert ReIDEncoder(copy, runtime="openvino").embedder is not embedder
    with torch.no_grad():
        copy.vit.layernorm.bias.add_(0.5)  # in place, as an optimizer step
    changed = encoder.embedder
    pixels = torch.randn(2, 3, 64, 32)
    assert changed is not embedder
    assert torch.allclose(changed.embed(pixels), copy.embed(pixels), atol=ATOL)
    assert encoder.embedder is changed
    # A parameter replaced by a new one (as load_state_dict(assign=True) or a user's surgery does), not modified.
    copy.vit.layernorm.bias = torch.nn.Parameter(copy.vit.layernorm.bias.detach() - 0.5)
    replaced = encoder.embedder
    assert replaced is not changed
    assert torch.allclose(replaced.embed(pixels), copy.embed(pixels), atol=ATOL)


def test_models_with_other_weights_get_other_cache_folders(model):
    torch.manual_seed(1)
    other = LATransformerForReID(tiny_config()).eval()
    assert onnx_cache_key(other) != onnx_cache_key(model)
    row_heads_changed = LATransformerForReID(tiny_config(embedding="bottleneck")).eval()
    row_heads_changed.load_state_dict(other.state_dict())
    key = onnx_cache_key(row_heads_changed)
    with torch.no_grad():
        next(p for n, p in row_heads_changed.named_parameters() if not n.startswith("vit.")).add_(1.0)
    assert onnx_cache_key(row_heads_changed) != key  # bottleneck embeddings use the row heads


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_LAREID_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert onnx_cache_dir() == tmp_path / "xdg" / "hf_lareid" / "onnx"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert onnx_cache_dir() == onnx_cache_dir().home() / ".cache" / "hf_lareid" / "onnx"


def test_evaluate_model_gives_the_same_metrics_with_every_runtime(model, processor, tmp_path):
    from hf_lareid import evaluate_model

    people = generate_synthetic_reid(
        tmp_path / "market", num_ids=4, num_cameras=2, images_per_camera=2, image_size=(64, 32)
    )
    data = load_reid_dataset("market1501", data_dir=people)
    results = {
        runtime: evaluate_model(
            model,
            data["query"],
            data["gallery"],
            image_processor=processor,
            runtime=runtime,
            bf16=False,
            progress=False,
        )
        for runtime in ["torch", *ONNX_RUNTIMES]
    }
    for runtime in ONNX_RUNTIMES:
        assert np.abs(results[runtime].gallery.embeddings - results["torch"].gallery.embeddings).max() < ATOL
        assert results[runtime].metrics["rank1"] == results["torch"].metrics["rank1"]
        assert abs(results[runtime].metrics["mAP"] - results["torch"].metrics["mAP"]) < 1e-6


@pytest.mark.skipif(not runtime_available("openvino"), reason="needs the openvino extra")
def test_openvino_is_imported_with_its_telemetry_off(tmp_path):
    """`import openvino` alone sends a usage event (no consent file in a fresh home, no CI): the package's import
    must leave OpenVINO on its no-op telemetry stub, and leave `openvino_telemetry` importable afterwards."""
    script = (
        "import sys\n"
        "from hf_lareid.embedding.backends import import_openvino\n"
        "import_openvino()\n"
        "from openvino.tools.ovc import telemetry_utils\n"
        "print(telemetry_utils.tm.__name__)\n"
        "import openvino_telemetry\n"
        "print('importable', openvino_telemetry.__name__)\n"
    )
    environment = {key: value for key, value in os.environ.items() if key != "CI"}
    environment["HOME"] = str(tmp_path)  # no consent file: OpenVINO's own default would send
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, timeout=120
    )
    assert result.returncode == 0, result.stderr
    stub, importable = result.stdout.split("\n")[:2]
    assert stub == "openvino.tools.ovc.telemetry_stub"
    assert importable == "importable openvino_telemetry"
