"""Training losses of LA-Transformer: the per-row cross-entropy (the model's, label-smoothed here) and batch-hard triplet."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..modeling_lareid import part_cross_entropy  # the model's own loss; the trainer adds label smoothing to it


def batch_hard_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """
    Batch-hard triplet loss (Hermans et al. 2017), as TransReID and the re-ID "bag of tricks" use it.

    For every anchor, the farthest sample of the same identity and the closest sample of another identity
    (Euclidean distances) give `max(0, d_pos - d_neg + margin)`; the loss is the mean over anchors that have
    both a positive and a negative in the batch (zero when none has: sample batches with P identities x K images).

    Args:
        embeddings: `(batch_size, dim)` features, e.g. the model's unit-norm `embeddings`.
        labels: `(batch_size,)` identity labels.
        margin: the triplet margin.

    Returns:
        A scalar tensor.

    Example:

    ```python
    >>> embeddings = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    >>> batch_hard_triplet_loss(embeddings, torch.tensor([0, 0, 1, 1]), margin=0.3)  # well separated
    tensor(0.)
    ```
    """
    squared_norms = embeddings.pow(2).sum(dim=1)
    squared = squared_norms[:, None] + squared_norms[None, :] - 2.0 * embeddings @ embeddings.T
    # clamp before sqrt: the gradient of sqrt at 0 (an image and itself) is infinite.
    distances = squared.clamp_min(1e-12).sqrt()  # (batch, batch)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive_mask, negative_mask = same & ~eye, ~same
    valid = positive_mask.any(dim=1) & negative_mask.any(dim=1)
    if not valid.any():
        return embeddings.sum() * 0.0  # keeps the graph (and DDP's bookkeeping) intact
    hardest_positive = distances.masked_fill(~positive_mask, float("-inf")).amax(dim=1)
    hardest_negative = distances.masked_fill(~negative_mask, float("inf")).amin(dim=1)
    losses = F.relu(hardest_positive - hardest_negative + margin)
    return losses[valid].mean()


__all__ = ["batch_hard_triplet_loss", "part_cross_entropy"]
