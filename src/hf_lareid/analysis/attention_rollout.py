"""Model analysis: attention rollout (Abnar & Zuidema, 2020) of an LA-Transformer, on its patch grid."""

from __future__ import annotations

import torch

__all__ = ["attention_rollout"]


@torch.no_grad()
def attention_rollout(model: torch.nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """
    Attention rollout from the global token over all layers (Abnar & Zuidema, 2020), on the patch grid.

    Per layer the heads are averaged, the identity is added for the residual connection and rows are
    re-normalised; the layers are multiplied (first layer on the right); the global token's row (the CLS token's,
    or for DeiT the mean of the rows `config.global_token` names) over the patch tokens, which follow the
    `config.num_special_tokens` special tokens, is reshaped to the grid and min-max normalised per image.

    Args:
        model: an `LATransformerForReID` (it switches to eager attention for this call).
        pixel_values: `(batch, 3, height, width)`, prepared by the model's image processor.

    Returns:
        `(batch, rows, cols)` float tensor in [0, 1], rows = `config.num_parts`.

    Example:

    ```python
    >>> from hf_lareid import LATransformerConfig, LATransformerForReID
    >>> model = LATransformerForReID(LATransformerConfig(backbone_config={
    ...     "model_type": "vit", "image_size": [64, 32], "patch_size": 16, "hidden_size": 32,
    ...     "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64})).eval()
    >>> attention_rollout(model, torch.rand(3, 3, 64, 32)).shape  # a 4 x 2 patch grid
    torch.Size([3, 4, 2])
    ```
    """
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        attentions = model(pixel_values.to(device), output_attentions=True, return_dict=True).attentions
    finally:
        model.train(was_training)
    rollout = None
    for attention in attentions:  # (batch, heads, tokens, tokens)
        # float64: the final min-max stretch magnifies rounding where attention is nearly uniform (untrained models).
        mixed = attention.double().mean(dim=1)
        mixed = mixed + torch.eye(mixed.shape[-1], dtype=mixed.dtype, device=mixed.device)
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        rollout = mixed if rollout is None else mixed @ rollout
    (rows, cols), (start, stop) = model.config.grid_size, model.config.global_token_span
    global_to_patches = rollout[:, start:stop, model.config.num_special_tokens :].mean(dim=1).reshape(-1, rows, cols)
    low = global_to_patches.amin(dim=(1, 2), keepdim=True)
    high = global_to_patches.amax(dim=(1, 2), keepdim=True)
    return ((global_to_patches - low) / (high - low).clamp_min(1e-12)).float().cpu()
