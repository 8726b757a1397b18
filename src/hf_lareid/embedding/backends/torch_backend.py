"""PyTorch eager: `model.embed` on the model's device, under bf16 autocast where asked."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..precision import autocast_context
from .base import Embedder


@torch.no_grad()
def embed_pixels(
    model: torch.nn.Module, pixel_values: torch.Tensor, flip: bool = False, bf16: bool = False
) -> torch.Tensor:
    """
    Unit-norm fp32 embeddings of a preprocessed batch: `(batch, 3, height, width) -> (batch, embedding_dim)`.

    `flip` averages the embeddings of the images and their mirror images and re-normalises (test-time
    augmentation). `bf16` runs the model under bf16 autocast.
    """
    device = next(model.parameters()).device
    pixel_values = pixel_values.to(device=device, dtype=torch.float32)
    with autocast_context(bf16, device):
        embeddings = model.embed(pixel_values).float()
        if flip:
            embeddings = embeddings + model.embed(pixel_values.flip(-1)).float()
    return F.normalize(embeddings, dim=-1)


class TorchEmbedder(Embedder):
    """PyTorch eager `model.embed` (under bf16 autocast when `bf16`), on the model's device, on its live weights."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, bf16: bool = False):
        self.model, self.bf16 = model, bf16

    def embed(self, pixel_values: np.ndarray | torch.Tensor, flip: bool = False) -> torch.Tensor:
        was_training = self.model.training  # switching modes walks every module: only when needed
        if was_training:
            self.model.eval()
        try:
            return embed_pixels(self.model, torch.as_tensor(pixel_values), flip=flip, bf16=self.bf16)
        finally:
            if was_training:
                self.model.train()


__all__ = ["TorchEmbedder", "embed_pixels"]
