"""Image -> vector, with one owner: [`ReIDEncoder`].

| module | concern |
|---|---|
| `encoder` | `ReIDEncoder` (`encode`, `iter_encode`, `provenance`), `extract_features` (`iter_features`: deprecated) |
| `feature_set` | `FeatureSet`: embeddings with person ids, camera ids and paths |
| `precision` | the bf16 policy (`"auto"` / `True` / `False`) and the autocast context |
| `provenance` | `Provenance`: what decides a vector, recorded by indexes and compared in one place |
| `fingerprint` | the model and runtime parts of a provenance, read from a live model |
| `sharding` | which rows a rank embeds, gathering them, launching under torchrun |
| `inputs` | images, paths, arrays and datasets -> batches of pixels |
| `backends/` | PyTorch, ONNX Runtime, OpenVINO, the `"auto"` table and the exported-graph cache |
| `onnx_export` | exporting the embedding model to ONNX and checking it |
| `pipeline` | the `lareid-embedding` transformers pipeline |
| `loading` | a model folder with its image processor |
"""

from .encoder import ReIDEncoder, extract_features, iter_features
from .feature_set import FeatureSet
from .fingerprint import model_fingerprint, runtime_settings
from .precision import BF16Option, bf16_option, bf16_pays, resolve_bf16
from .provenance import Provenance, embedding_settings
from .sharding import gather_features

__all__ = [
    "BF16Option",
    "FeatureSet",
    "Provenance",
    "ReIDEncoder",
    "bf16_option",
    "bf16_pays",
    "embedding_settings",
    "extract_features",
    "gather_features",
    "iter_features",
    "model_fingerprint",
    "resolve_bf16",
    "runtime_settings",
]
