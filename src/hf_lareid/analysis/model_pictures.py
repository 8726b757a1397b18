"""The pictures of `lareid demo`, `lareid search` and `lareid serve` that need a model or a Trainer log: the rollout
computed by the model analysis (`hf_lareid.analysis.attention_rollout`), the unfreezing epochs read from the log, both drawn by
`hf_lareid.analysis.pictures` (the `plots` extra)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..training.callbacks import unfreeze_epochs as logged_unfreeze_epochs
from ..utils.errors import InvalidInputError
from ..utils.images import ImageLike, load_rgb
from . import pictures as drawing
from .attention_rollout import attention_rollout


def plot_attention(
    model: torch.nn.Module, images: Sequence[ImageLike], image_processor: Any, path: str | os.PathLike
) -> Path:
    """
    Each image above the attention rollout of `model` (an `LATransformerForReID`), with its row parts marked.

    Example:

    ```python
    >>> from PIL import Image
    >>> from transformers import ViTImageProcessorPil
    >>> from hf_lareid import LATransformerConfig, LATransformerForReID
    >>> model = LATransformerForReID(LATransformerConfig(backbone_config={
    ...     "model_type": "vit", "image_size": [64, 32], "patch_size": 16, "hidden_size": 32,
    ...     "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64})).eval()
    >>> processor = ViTImageProcessorPil(size={"height": 64, "width": 32})
    >>> plot_attention(model, [Image.new("RGB", (32, 64), "gray")], processor, "attention.png").name
    'attention.png'
    ```
    """
    if not len(images):
        raise InvalidInputError("images is empty: pass at least one image.")
    pictures = [load_rgb(image) for image in images]
    pixel_values = image_processor(pictures, return_tensors="pt")["pixel_values"]
    rollout = attention_rollout(model, pixel_values)  # (batch, rows, cols)
    return drawing.plot_attention_rollout(pictures, rollout, model.config.image_size, path)


def plot_training_curves(
    log_history: Sequence[Mapping[str, Any]], path: str | os.PathLike, unfreeze_epochs: Sequence[float] | None = None
) -> Path:
    """
    [`drawing.plot_training_curves`] of a Trainer's `state.log_history`; the unfreezing epochs default to those
    `BlockwiseUnfreezeCallback` logged.

    Example:

    ```python
    >>> log_history = [{"epoch": 1.0, "loss": 3.2}, {"epoch": 1.0, "eval_rank1": 0.4, "eval_mAP": 0.3}]
    >>> plot_training_curves(log_history, "training.png").name  # trainer.state.log_history after training
    'training.png'
    ```
    """
    if unfreeze_epochs is None:
        unfreeze_epochs = logged_unfreeze_epochs(list(log_history))
    return drawing.plot_training_curves(log_history, path, unfreeze_epochs)


__all__ = ["plot_attention", "plot_training_curves"]
