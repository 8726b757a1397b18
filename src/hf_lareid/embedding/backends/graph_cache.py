"""The exported ONNX graphs that ONNX Runtime and OpenVINO run, cached on disk by the model's provenance.

A graph is exported once per model into `onnx_cache_dir()/<key>/model.onnx`, where the key covers everything the
graph depends on: the model's fingerprint and every config field its forward reads ([`Provenance.model_key`]),
the opset and the exporter. A `manifest.json` beside it holds its SHA-256, checked on every reuse (a damaged file is
exported again with a warning). The cache is never inside a model folder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Optional

import torch

from ...utils.io import atomic_write_text, file_sha256, folder_lock
from ..fingerprint import model_fingerprint, model_forward_config
from ..provenance import Provenance
from .base import Embedder

logger = logging.getLogger(__name__)

ONNX_OPSET = 18
# The TorchScript exporter: about 10x faster to export than the torch.export-based one, and its graph runs as fast or
# faster in onnxruntime and OpenVINO (benchmarks/bench_runtimes.py).
ONNX_EXPORTER = "torchscript"
CACHE_ENV = "HF_LAREID_CACHE"
MANIFEST_NAME = "manifest.json"
ONNX_NAME = "model.onnx"


def onnx_cache_dir() -> Path:
    """`$HF_LAREID_CACHE/onnx`, else `$XDG_CACHE_HOME/hf_lareid/onnx` (`~/.cache/hf_lareid/onnx`)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / "onnx"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "hf_lareid" / "onnx"


def model_key(model: torch.nn.Module) -> str:
    """[`Provenance.model_key`] of `model` as it is now (its fingerprint and forward config)."""
    return Provenance(model_fingerprint(model), model_forward_config(model)).model_key()


def onnx_cache_key(model: torch.nn.Module, key: Optional[str] = None) -> str:
    """The cache folder name of `model`'s graph: 32 hex of the model key (computed unless given), opset and exporter."""
    key = model_key(model) if key is None else key
    return hashlib.sha256(f"{key}|opset{ONNX_OPSET}|{ONNX_EXPORTER}".encode()).hexdigest()[:32]


def cached_onnx(model: torch.nn.Module, key: Optional[str] = None) -> Path:
    """
    The model's ONNX graph in the cache, exported (and checked with onnxruntime when installed) on first use.

    `key` is the model's [`Provenance.model_key`] when the caller knows it (computed otherwise). Reuse checks the
    file's SHA-256 against the manifest; a damaged or unrecorded file is re-exported with a warning.
    """
    from ..onnx_export import export_onnx

    folder = onnx_cache_dir() / onnx_cache_key(model, key)
    path, manifest_path = folder / ONNX_NAME, folder / MANIFEST_NAME
    with folder_lock(folder, wait=True):  # two processes embedding with one model export it once
        if path.is_file():
            try:
                recorded = json.loads(manifest_path.read_text())["sha256"]
            except (OSError, ValueError, KeyError, TypeError):
                recorded = None
            if recorded == file_sha256(path):
                return path
            logger.warning("%s does not match its recorded SHA-256 (damaged or edited): exporting it again.", path)
        folder.mkdir(parents=True, exist_ok=True)
        report = export_onnx(
            model,
            path,
            opset=ONNX_OPSET,
            exporter=ONNX_EXPORTER,
            check=importlib.util.find_spec("onnxruntime") is not None,
        )
        manifest = {
            "producer": "hf-lareid",
            "sha256": file_sha256(path),
            "opset": ONNX_OPSET,
            "exporter": report["exporter"],
            "max_abs_diff": report["max_abs_diff"],
            "torch": torch.__version__,
        }
        atomic_write_text(manifest_path, json.dumps(manifest, indent=2) + "\n")
        # DEBUG: a cache detail; the demo and every evaluation of a new model would print it (`--debug` shows it).
        logger.debug("Exported the model to %s for the ONNX runtimes (once per model).", path)
    return path


def exported_once(model: torch.nn.Module, embedder_class: type[Embedder], threads: int) -> Embedder:
    """An ONNX embedder of the weights `model` has now: exported to a temporary file, loaded, and the file removed."""
    from ..onnx_export import export_onnx

    with tempfile.TemporaryDirectory(prefix="hf_lareid_onnx_") as folder:
        path = Path(folder) / ONNX_NAME
        export_onnx(model, path, opset=ONNX_OPSET, exporter=ONNX_EXPORTER, check=False)
        return embedder_class(path, threads=threads)  # both runtimes read the whole graph when they load it


__all__ = [
    "ONNX_EXPORTER",
    "ONNX_OPSET",
    "cached_onnx",
    "exported_once",
    "model_key",
    "onnx_cache_dir",
    "onnx_cache_key",
]
