"""ONNX Runtime's CPU provider on an exported graph."""

from __future__ import annotations

import os

import numpy as np

from ...utils.extras import require_extra
from .base import Embedder


class OnnxRuntimeEmbedder(Embedder):
    """ONNX Runtime's CPU provider on the graph at `onnx_path`, with `threads` intra-op threads."""

    name = "onnxruntime"

    def __init__(self, onnx_path: str | os.PathLike, threads: int):
        onnxruntime = require_extra("onnxruntime", "onnx", "runtime='onnxruntime'")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        # ONNX Runtime's workers busy-wait after each run by default, taking the cores from whatever this process
        # runs next (its own preprocessing, training steps or web requests, or another runtime).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(os.fspath(onnx_path), options, providers=["CPUExecutionProvider"])

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.session.get_inputs()[0].name: pixels})[0]


__all__ = ["OnnxRuntimeEmbedder"]
