"""ONNX export: onnxruntime reproduces `model.embed`, opset and dynamic batch axis are as asked, errors are clear."""

import os
import stat
import sys

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

from hf_lareid.embedding import onnx_export  # noqa: E402
from hf_lareid.embedding.onnx_export import check_onnx, export_onnx  # noqa: E402


def _onnxruntime_matches_pytorch(model, path, batch_sizes=(1, 4)):
    """Max abs difference between onnxruntime on the file and `model.embed`, over fresh random batches."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(123)
    differences = []
    for batch_size in batch_sizes:
        pixel_values = torch.randn(batch_size, 3, 64, 32, generator=generator)
        with torch.no_grad():
            expected = model.embed(pixel_values).numpy()
        (got,) = session.run(None, {"pixel_values": pixel_values.numpy()})
        assert got.shape == (batch_size, model.config.embedding_dim)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        differences.append(np.abs(got - expected).max())
    return max(differences)


def _opset(path):
    return next(entry.version for entry in onnx.load(str(path)).opset_import if entry.domain in ("", "ai.onnx"))


def test_export_default_opset_matches_pytorch(tmp_path, tiny_model, tiny_image_processor):
    path = tmp_path / "model.onnx"
    report = export_onnx(tiny_model, path, image_processor=tiny_image_processor)

    assert path.is_file() and report["path"] == str(path)
    assert report["exporter"] == "dynamo"
    assert report["opset"] == _opset(path) == onnx_export.DEFAULT_OPSET
    assert set(report["max_abs_diff_per_batch_size"]) == {1, 3}
    assert report["max_abs_diff"] == max(report["max_abs_diff_per_batch_size"].values()) < 1e-4
    assert report["embedding_dim"] == tiny_model.config.embedding_dim == 128
    assert _onnxruntime_matches_pytorch(tiny_model, path) < 1e-4

    proto = onnx.load(str(path))
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.HasField("dim_value")  # dynamic batch
    metadata = {prop.key: prop.value for prop in proto.metadata_props}
    assert metadata["image_size"] == "[64, 32]"
    assert metadata["preprocessor_image_mean"] == "[0.5, 0.5, 0.5]"
    assert not [p for p in tmp_path.iterdir() if p.name != "model.onnx"]  # no temporary file left
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # the user's normal mode, not mkstemp's 0600


def test_low_opset_uses_torchscript_exporter_and_restores_model(tmp_path, tiny_model):
    tiny_model.train()
    path = tmp_path / "model17.onnx"
    report = export_onnx(tiny_model, path, opset=17)

    assert report["exporter"] == "torchscript"
    assert _opset(path) == 17
    assert tiny_model.training and tiny_model.vit.config._attn_implementation == "sdpa"
    tiny_model.eval()
    assert _onnxruntime_matches_pytorch(tiny_model, path) < 1e-4

    differences = check_onnx(tiny_model, path, batch_sizes=(2,))
    assert set(differences) == {2} and differences[2] < 1e-4
    with torch.no_grad():
        tiny_model.vit.layernorm.bias.add_(0.5)  # the file no longer matches the model
    with pytest.raises(ValueError, match=r"model17.onnx: onnxruntime and PyTorch embeddings differ"):
        check_onnx(tiny_model, path)


def replace_dynamo_exporter(monkeypatch, dynamo_export):
    """Makes the dynamo exporter call `dynamo_export` instead; the TorchScript exporter runs as usual."""
    run_exporter = onnx_export._run_exporter

    def patched(name, *args, **kwargs):
        return dynamo_export(*args, **kwargs) if name == "dynamo" else run_exporter(name, *args, **kwargs)

    monkeypatch.setattr(onnx_export, "_run_exporter", patched)


def test_dynamo_failure_falls_back_to_torchscript(tmp_path, tiny_model, monkeypatch):
    def failing_export(*args, **kwargs):
        raise RuntimeError("unsupported operator")

    replace_dynamo_exporter(monkeypatch, failing_export)
    path = tmp_path / "model.onnx"
    report = export_onnx(tiny_model, path, opset=18)
    assert report["exporter"] == "torchscript" and _opset(path) == 18
    assert _onnxruntime_matches_pytorch(tiny_model, path) < 1e-4


def test_torchscript_exporter_at_the_default_opset_never_calls_torch_export(tmp_path, tiny_model, monkeypatch):
    def dynamo_export(*args, **kwargs):
        raise AssertionError("exporter='torchscript' must not use the torch.export-based exporter")

    replace_dynamo_exporter(monkeypatch, dynamo_export)
    path = tmp_path / "model.onnx"
    report = export_onnx(tiny_model, path, exporter="torchscript")
    assert report["exporter"] == "torchscript" and _opset(path) == onnx_export.DEFAULT_OPSET
    assert _onnxruntime_matches_pytorch(tiny_model, path) < 1e-4
    with pytest.raises(ValueError, match="exporter must be"):
        export_onnx(tiny_model, tmp_path / "other.onnx", exporter="jit")


def test_failed_check_leaves_no_file(tmp_path, tiny_model):
    path = tmp_path / "model.onnx"
    with pytest.raises(ValueError, match=r"model.onnx not written: .*differ by .*\(atol 0\)"):
        export_onnx(tiny_model, path, opset=17, atol=0.0)
    assert list(tmp_path.iterdir()) == []


def test_missing_parent_folder_is_a_clear_error(tmp_path, tiny_model):
    path = tmp_path / "missing" / "model.onnx"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_onnx(tiny_model, path)
    assert not path.parent.exists()


def test_missing_onnxruntime_says_how_to_install(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    with pytest.raises(ImportError, match=r"onnxruntime, which is not installed: install hf-lareid's 'onnx' extra"):
        export_onnx(tiny_model, tmp_path / "model.onnx")
