"""OpenVINO on the CPU, in fp32, on an exported graph; imported with its telemetry off."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np

from ...utils.extras import require_extra
from .base import Embedder


def import_openvino():
    """
    `openvino`, imported with its telemetry off; one line naming the `openvino` extra when it is missing.

    `import openvino` sends a usage event to Google Analytics (its model-conversion tools' `openvino_telemetry`,
    opted in unless a consent file in the home folder says no, or `CI=true`). hf-lareid embeds people's photos and
    its web app promises to contact nothing, so the import runs with `openvino_telemetry` blocked: OpenVINO then
    falls back to its own no-op stub for this process. The block is lifted right after the import.
    """
    blocked = "openvino" not in sys.modules and "openvino_telemetry" not in sys.modules
    if blocked:
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # `import` now raises ImportError
    try:
        return require_extra("openvino", "openvino", "runtime='openvino'")
    finally:
        if blocked:
            del sys.modules["openvino_telemetry"]


class OpenVINOEmbedder(Embedder):
    """OpenVINO on the CPU in fp32 (its bf16 default on AMX/AVX-512 CPUs is turned off) with `threads` threads."""

    name = "openvino"

    def __init__(self, onnx_path: str | os.PathLike, threads: int):
        openvino = import_openvino()
        config = {"INFERENCE_NUM_THREADS": str(threads), "INFERENCE_PRECISION_HINT": "f32"}
        self.compiled = openvino.Core().compile_model(os.fspath(onnx_path), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.lock = threading.Lock()  # one infer request: one batch at a time (the web app serves threads)

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        with self.lock:
            self.request.infer({0: pixels})
            return self.request.get_output_tensor(0).data.copy()


__all__ = ["OpenVINOEmbedder", "import_openvino"]
