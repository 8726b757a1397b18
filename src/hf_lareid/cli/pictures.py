"""The pictures of `lareid demo`, `lareid search` and `lareid serve` that need a model or a Trainer log: the rollout
computed by the model analysis (`hf_lareid.attention_rollout`), the unfreezing epochs read from the log, both drawn by
`hf_lareid.visualization` (the `plots` extra)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .. import visualization
from ..attention_rollout import attention_rollout
from ..image_utils import ImageLike, load_rgb
from ..training.callbacks import unfreeze_epochs as logged_unfreeze_epochs


def plot_attention(
    model: torch.nn.Module, images: Sequence[ImageLike], image_processor: Any, path: str | os.PathLike
) -> Path:
    """
    Each image above the attention rollout of `model` (an `LATransformerForReID`), with its row parts marked.

    Example:

    ```python
    >>> plot_attention(model, ["a.jpg", "b.jpg"], image_processor, "attention.png")
    ```
    """
    if not len(images):
        raise ValueError("images is empty: pass at least one image.")
    pictures = [load_rgb(image) for image in images]
    pixel_values = image_processor(pictures, return_tensors="pt")["pixel_values"]
    rollout = attention_rollout(model, pixel_values)  # (batch, rows, cols)
    return visualization.plot_attention_rollout(pictures, rollout, model.config.image_size, path)


def plot_training_curves(
    log_history: Sequence[Mapping[str, Any]], path: str | os.PathLike, unfreeze_epochs: Sequence[float] | None = None
) -> Path:
    """
    [`visualization.plot_training_curves`] of a Trainer's `state.log_history`; the unfreezing epochs default to those
    `BlockwiseUnfreezeCallback` logged.

    Example:

    ```python
    >>> plot_training_curves(trainer.state.log_history, "training.png")
    ```
    """
    if unfreeze_epochs is None:
        unfreeze_epochs = logged_unfreeze_epochs(list(log_history))
    return visualization.plot_training_curves(log_history, path, unfreeze_epochs)


__all__ = ["plot_attention", "plot_training_curves"]
