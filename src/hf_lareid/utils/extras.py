"""The optional parts of hf-lareid (setup.cfg extras) and the one line that names the extra when one is missing.

| extra | installs | needed by |
|---|---|---|
| `plots` | matplotlib | `hf_lareid.analysis.pictures`: `lareid demo`, `lareid search --picture` |
| `evaluate` | evaluate | `hf_lareid.evaluation.load_reid_metric` (the `evaluate` metric module) |
| `onnx` | onnx, onnxscript, onnxruntime | `lareid export-onnx` (see `hf_lareid.embedding.onnx_export`), `runtime="onnxruntime"` |
| `openvino` | openvino | `runtime="openvino"` (with the `onnx` extra; see `hf_lareid.embedding.backends`) |
| `serve` | gradio | `lareid serve` and `spaces/app.py` (see `hf_lareid.web.app`) |
| `qdrant` | qdrant-client | `hf_lareid.retrieval.qdrant_index` (`lareid index --backend qdrant`) |
| `video` | av (PyAV) | `hf_lareid.video`: reading video files (`lareid video index`) |
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtraError


def require_extra(module: str, extra: str, purpose: str) -> ModuleType:
    """
    Imports and returns `module`, or raises [`MissingExtraError`] naming the `extra` that installs it.

    Example:

    ```python
    >>> require_extra("json", "core", "Reading JSON").__name__
    'json'
    >>> require_extra("no_such_module", "plots", "The pictures")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    hf_lareid.utils.errors.MissingExtraError: The pictures need no_such_module, which is not installed: install hf-lareid's 'plots' extra ...
    ```
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"{purpose} need {module}, which is not installed: install hf-lareid's '{extra}' extra "
            f'(pip install ".[{extra}]" in its source folder) or pip install {module}.'
        ) from error


__all__ = ["MissingExtraError", "require_extra"]
