"""hf-lareid: person re-identification with the Locally Aware Transformer, the Hugging Face way.

`import hf_lareid` registers the `la-transformer` config and model with `AutoConfig` / `AutoModel` and the
`lareid-embedding` pipeline task.
"""

from transformers import AutoConfig, AutoModel

from .configuration_lareid import LATransformerConfig
from .modeling_lareid import LATransformerForReID, LATransformerOutput

__version__ = "0.1.0"

AutoConfig.register(LATransformerConfig.model_type, LATransformerConfig, exist_ok=True)
AutoModel.register(LATransformerConfig, LATransformerForReID, exist_ok=True)

__all__ = [
    "LATransformerConfig",
    "LATransformerForReID",
    "LATransformerOutput",
    "__version__",
]
