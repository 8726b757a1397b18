"""hf-lareid: person re-identification with the Locally Aware Transformer, the Hugging Face way.

`import hf_lareid` registers the `la-transformer` config and model with `AutoConfig` / `AutoModel` and the
`lareid-embedding` pipeline task. The model, the encoder and the pipeline are imported at once; data, evaluation,
retrieval, training, conversion and export are imported on first use (`hf_lareid.LATransformerTrainer` works,
without paying for `datasets` or the Trainer on `import hf_lareid`).
"""

from importlib import import_module
from typing import Any

from transformers import AutoConfig, AutoModel

from .configuration_lareid import LATransformerConfig
from .embedding import FeatureSet, Provenance, ReIDEncoder, extract_features, iter_features, model_fingerprint
from .embedding.pipeline import LAReIDEmbeddingPipeline, register_pipeline
from .modeling_lareid import LATransformerForReID, LATransformerOutput
from .utils.integrity import ModelWeightsMismatchError, verify_model_weights

__version__ = "0.1.0"

AutoConfig.register(LATransformerConfig.model_type, LATransformerConfig, exist_ok=True)
AutoModel.register(LATransformerConfig, LATransformerForReID, exist_ok=True)
register_pipeline()

# Public names of the submodules, imported lazily: name -> submodule.
_LAZY_EXPORTS = {
    ".data": (
        "PKSampler",
        "REID_DATASETS",
        "ReIDCollection",
        "ReIDDataError",
        "ReIDRecord",
        "build_eval_transform",
        "build_train_transform",
        "clear_reid_cache",
        "data_root",
        "file_name_scheme",
        "generate_synthetic_reid",
        "generate_synthetic_video",
        "load_reid_dataset",
        "merge_training_sets",
    ),
    ".evaluation": (
        "REID_METRIC_PATH",
        "ThresholdCalibration",
        "calibrate_threshold",
        "evaluate_reid",
        "load_reid_metric",
        "re_rank",
    ),
    ".evaluation.results_table": ("format_results_table",),
    ".embedding.sharding": ("gather_features",),
    ".tracking": ("ReIDBackend",),
    ".video": ("VideoInputError", "VideoJob", "index_videos", "search_tracklets"),
    ".utils.errors": ("DamagedFileError", "InvalidInputError", "LAReIDError", "MissingExtraError"),
    ".utils.images": ("ImageReadError", "load_rgb"),
    ".tasks.evaluate": ("ModelEvaluation", "calibrate_model", "evaluate_model"),
    ".retrieval": (
        "CorruptIndexError",
        "EmbeddingSettingsMismatchError",
        "FingerprintMismatchError",
        "GalleryIndex",
        "SearchResult",
        "QdrantGalleryIndex",
        "same_camera_mask",
        "search_other_cameras",
    ),
    ".training": ("BlockwiseUnfreezeCallback", "LATransformerTrainer", "LATransformerTrainingArguments"),
    ".hub.setups": ("list_setups", "load_setup", "setup_path"),
    ".convert_original": ("ConversionError", "convert_original_checkpoint"),
    ".embedding.onnx_export": ("check_onnx", "export_onnx"),
    ".embedding.backends": ("AUTO_PREFERENCE", "Embedder", "make_embedder", "onnx_cache_dir"),
    ".hub.modelcard": ("check_model_card", "render_model_card", "write_model_card"),
}
_LAZY_NAMES = {name: module for module, names in _LAZY_EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    if name not in _LAZY_NAMES:
        raise AttributeError(f"module 'hf_lareid' has no attribute {name!r}")
    value = getattr(import_module(_LAZY_NAMES[name], __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "FeatureSet",
    "LAReIDEmbeddingPipeline",
    "LATransformerConfig",
    "LATransformerForReID",
    "LATransformerOutput",
    "ModelWeightsMismatchError",
    "Provenance",
    "ReIDEncoder",
    "__version__",
    "extract_features",
    "iter_features",
    "model_fingerprint",
    "verify_model_weights",
    *_LAZY_NAMES,
]
