"""The `lareid-embedding` pipeline: images in, unit-norm LA-Transformer embeddings out."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import Pipeline

from ..utils.errors import InvalidInputError
from ..utils.images import load_rgb
from .backends.auto import RuntimeOption
from .encoder import ReIDEncoder
from .precision import BF16Option

TASK_NAME = "lareid-embedding"


class LAReIDEmbeddingPipeline(Pipeline):
    """
    Person re-ID embeddings from an [`LATransformerForReID`] and its image processor.

    Inputs: a PIL image, a local path, a URL or an image array (read with `hf_lareid.load_rgb`), or a list/generator
    of these; `batch_size` works as in every pipeline. Output per image: the unit-norm embedding, a list of
    `num_parts * hidden_size` floats, or a numpy array with `return_tensors="np"` (`"pt"` for a torch tensor).

    Options (at construction or per call): `flip=True` averages each image with its mirror image;
    `bf16="auto"|True|False` runs under bf16 autocast where it pays (default `False`: exact fp32);
    `runtime="auto"|"torch"|"onnxruntime"|"openvino"` picks what embeds (see `hf_lareid.embedding.backends`; default
    `"auto"`). The pipeline keeps one [`ReIDEncoder`] per combination of these options, so an ONNX runtime's loaded
    graph is reused across calls until the model's weights or forward config change.

    Example:

    ```python
    >>> import tempfile
    >>> import numpy as np
    >>> from transformers import ViTImageProcessorPil, pipeline
    >>> import hf_lareid  # registers the task
    >>> backbone = {"model_type": "vit", "image_size": [64, 32], "patch_size": 16, "hidden_size": 32,
    ...             "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
    >>> model_dir = tempfile.mkdtemp()  # a model folder: a small random model here, a trained one in practice
    >>> hf_lareid.LATransformerForReID(hf_lareid.LATransformerConfig(backbone_config=backbone)).save_pretrained(model_dir)
    >>> processor = ViTImageProcessorPil(size={"height": 64, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    >>> _ = processor.save_pretrained(model_dir)
    >>> embedder = pipeline("lareid-embedding", model=model_dir, runtime="torch")
    >>> crops = [np.zeros((128, 64, 3), dtype=np.uint8), np.full((128, 64, 3), 200, dtype=np.uint8)]  # or paths
    >>> vectors = embedder(crops, return_tensors="np")
    >>> vectors[0].shape  # num_parts * hidden_size
    (128,)
    ```
    """

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = False

    def encoder(self, flip: bool = False, bf16: BF16Option = False, runtime: RuntimeOption = "auto") -> ReIDEncoder:
        """The [`ReIDEncoder`] this pipeline embeds with for these options (built on first use, then kept)."""
        encoders = self.__dict__.setdefault("_encoders", {})
        key = (bool(flip), bf16, runtime if isinstance(runtime, str) else id(runtime))
        if key not in encoders:
            encoders[key] = ReIDEncoder(self.model, self.image_processor, runtime=runtime, bf16=bf16, flip=flip)
        return encoders[key]

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(inputs, (list, tuple)) and not inputs:
            raise InvalidInputError(
                "the lareid-embedding pipeline got an empty list: pass at least one image (a PIL image, a path, a URL "
                "or an array)."
            )
        return super().__call__(inputs, *args, **kwargs)

    def _sanitize_parameters(
        self,
        flip: bool | None = None,
        bf16: BF16Option | None = None,
        runtime: RuntimeOption | None = None,
        return_tensors: str | bool | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> tuple[dict, dict, dict]:
        preprocess_params = {"timeout": timeout} if timeout is not None else {}
        forward_params = {}
        if flip is not None:
            forward_params["flip"] = flip
        if bf16 is not None:
            forward_params["bf16"] = bf16
        if runtime is not None:
            forward_params["runtime"] = runtime
        postprocess_params = {"return_tensors": return_tensors} if return_tensors is not None else {}
        return preprocess_params, forward_params, postprocess_params

    def preprocess(self, image: Any, timeout: float | None = None) -> dict[str, torch.Tensor]:
        return self.image_processor(load_rgb(image, timeout=timeout), return_tensors="pt")

    def _forward(
        self,
        model_inputs: dict[str, torch.Tensor],
        flip: bool = False,
        bf16: BF16Option = False,
        runtime: RuntimeOption = "auto",
    ) -> dict:
        return {"embeddings": self.encoder(flip, bf16, runtime).embed_pixels(model_inputs["pixel_values"])}

    def postprocess(self, model_outputs: dict, return_tensors: str | bool | None = None) -> Any:
        embedding = model_outputs["embeddings"][0]  # (embedding_dim,): one image per call
        if return_tensors == "np":
            return embedding.numpy().astype(np.float32, copy=False)
        if return_tensors in ("pt", True):
            return embedding
        return embedding.tolist()


def register_pipeline() -> None:
    """Registers `lareid-embedding` with transformers' pipeline registry (done by `import hf_lareid`)."""
    from transformers import AutoModel
    from transformers.pipelines import PIPELINE_REGISTRY

    PIPELINE_REGISTRY.register_pipeline(
        TASK_NAME, pipeline_class=LAReIDEmbeddingPipeline, pt_model=AutoModel, type="image"
    )


__all__ = ["LAReIDEmbeddingPipeline", "TASK_NAME", "register_pipeline"]
