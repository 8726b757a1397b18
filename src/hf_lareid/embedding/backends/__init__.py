"""What runs the model: PyTorch eager, ONNX Runtime or OpenVINO, each an [`Embedder`]; `"auto"` picks one by table."""

from .auto import AUTO_PREFERENCE, RUNTIMES, RuntimeOption, choose_runtime, make_embedder, runtime_available
from .base import Embedder
from .graph_cache import cached_onnx, onnx_cache_dir, onnx_cache_key
from .onnxruntime_backend import OnnxRuntimeEmbedder
from .openvino_backend import OpenVINOEmbedder, import_openvino
from .torch_backend import TorchEmbedder, embed_pixels

__all__ = [
    "AUTO_PREFERENCE",
    "Embedder",
    "OnnxRuntimeEmbedder",
    "OpenVINOEmbedder",
    "RUNTIMES",
    "RuntimeOption",
    "TorchEmbedder",
    "cached_onnx",
    "choose_runtime",
    "embed_pixels",
    "import_openvino",
    "make_embedder",
    "onnx_cache_dir",
    "onnx_cache_key",
    "runtime_available",
]
