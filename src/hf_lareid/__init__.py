"""hf-lareid: person re-identification with the Locally Aware Transformer, the Hugging Face way.

`import hf_lareid` registers the `la-transformer` config and model with `AutoConfig` / `AutoModel` and the
`lareid-embedding` pipeline task.
"""

from transformers import AutoConfig, AutoModel

from .configuration_lareid import LATransformerConfig
from .features import FeatureSet, extract_features, model_fingerprint
from .modeling_lareid import LATransformerForReID, LATransformerOutput
from .pipeline_lareid import LAReIDEmbeddingPipeline, register_pipeline

__version__ = "0.1.0"

AutoConfig.register(LATransformerConfig.model_type, LATransformerConfig, exist_ok=True)
AutoModel.register(LATransformerConfig, LATransformerForReID, exist_ok=True)
register_pipeline()

__all__ = [
    "FeatureSet",
    "LAReIDEmbeddingPipeline",
    "LATransformerConfig",
    "LATransformerForReID",
    "LATransformerOutput",
    "__version__",
    "extract_features",
    "model_fingerprint",
]
