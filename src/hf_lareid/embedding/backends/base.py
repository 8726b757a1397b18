"""The one call every runtime answers: `embed(pixel_values, flip) -> unit-norm embeddings`."""

from __future__ import annotations

import numpy as np
import torch


class Embedder:
    """Embeds preprocessed batches: `embed((batch, 3, H, W) float32, flip) -> (batch, embedding_dim)` unit norm."""

    name: str = ""
    bf16: bool = False  # whether it embeds under bf16 autocast (PyTorch only)

    def embed(self, pixel_values: np.ndarray | torch.Tensor, flip: bool = False) -> torch.Tensor:
        """`flip` averages each image's embedding with its mirror image's (one run of both), then re-normalises."""
        pixels = torch.as_tensor(pixel_values).detach().to("cpu", torch.float32)
        if flip:
            pixels = torch.cat([pixels, pixels.flip(-1)])
        embeddings = self._run(np.ascontiguousarray(pixels.numpy())).astype(np.float32, copy=False)
        if flip:
            half = len(embeddings) // 2
            embeddings = embeddings[:half] + embeddings[half:]
        # Normalised in NumPy, as F.normalize does (norms clamped at 1e-12): a torch op costs a batch of one image
        # a measurable share of its time.
        norms = np.maximum(np.linalg.norm(embeddings, axis=-1, keepdims=True), 1e-12)
        return torch.from_numpy(embeddings / norms)

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        """`(batch, 3, H, W)` float32 -> `(batch, embedding_dim)` raw embeddings."""
        raise NotImplementedError


__all__ = ["Embedder"]
