"""The encoders LA-Transformer runs on: one `BackboneSpec` per `model_type`, the only place that knows them apart.

Every backbone gives its special tokens first (CLS; DeiT's distillation token; DINOv2's registers), then the patch
tokens in raster order, which is all the row pooling needs. What differs between them (classes, special tokens,
position-embedding resampling, where the blocks are) is a field of the spec, read by the config, the model, the
checkpoint loader and blockwise unfreezing:

```python
>>> from hf_lareid.backbones import BACKBONES, backbone_spec
>>> sorted(BACKBONES)
['deit', 'dinov2', 'dinov2_with_registers', 'vit']
>>> backbone_spec("deit").num_prefix_positions
2
```
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    DeiTConfig,
    DeiTModel,
    Dinov2Config,
    Dinov2Model,
    Dinov2WithRegistersConfig,
    Dinov2WithRegistersModel,
    PreTrainedConfig,
    PreTrainedModel,
    ViTConfig,
    ViTModel,
)
from transformers.models.dinov2.modeling_dinov2 import Dinov2Embeddings
from transformers.models.dinov2_with_registers.modeling_dinov2_with_registers import Dinov2WithRegistersEmbeddings

from .utils.errors import InvalidInputError


class _PositionsAtTheirGrid:
    """
    DINOv2's embeddings resample their position embeddings on every forward, from a square grid (and always while
    traced, so an export would carry the resampling). LA-Transformer stores them at its own, tall grid
    (`from_backbone` resamples a checkpoint's once): use them as they are.
    """

    def interpolate_pos_encoding(self, embeddings: torch.Tensor, height: int, width: int) -> torch.Tensor:
        patch_h, patch_w = self.patch_embeddings.patch_size
        num_patches = (height // patch_h) * (width // patch_w)
        if num_patches != self.position_embeddings.shape[1] - 1:
            raise InvalidInputError(
                f"a {height}x{width} input has {num_patches} patches, the position embeddings "
                f"{self.position_embeddings.shape[1] - 1}: resize inputs with this model's image processor."
            )
        return self.position_embeddings


class LATransformerDinov2Embeddings(_PositionsAtTheirGrid, Dinov2Embeddings):
    """`Dinov2Embeddings` with position embeddings stored at the model's grid (see `_PositionsAtTheirGrid`)."""


class LATransformerDinov2WithRegistersEmbeddings(_PositionsAtTheirGrid, Dinov2WithRegistersEmbeddings):
    """`Dinov2WithRegistersEmbeddings` with position embeddings stored at the model's grid."""


@dataclass(frozen=True)
class BackboneGroups:
    """
    A backbone's parameters by role, as blockwise unfreezing needs them (timm's `group_matcher`, as modules).

    `stem`: patch and position embeddings and the special tokens; `blocks`: the transformer blocks, bottom first;
    `final_norm`: the LayerNorm after the last block.
    """

    stem: nn.Module
    blocks: nn.ModuleList
    final_norm: nn.Module


@dataclass(frozen=True)
class BackboneSpec:
    """
    What LA-Transformer needs to know of one backbone type.

    Attributes:
        model_type: the backbone config's `model_type` (`"vit"`, `"deit"`, ...).
        config_class / model_class: its transformers classes.
        num_prefix_positions: special tokens that have a position embedding (DeiT's CLS and distillation: 2).
        has_fixed_size: whether checkpoints have an input size of their own (ViT, DeiT) that `from_backbone` keeps
            by default; DINOv2 has none and gets a re-ID crop.
        antialias: resample position embeddings with antialiasing (as DINOv2 with registers does itself).
        blocks_path: attribute path of the transformer blocks inside the encoder.
        grid_embeddings: the embeddings class that keeps position embeddings at the model's grid, if the backbone's
            own resamples them on every forward.
        no_split_modules: the module classes `device_map` must keep on one device.
    """

    model_type: str
    config_class: type[PreTrainedConfig]
    model_class: type[PreTrainedModel]
    num_prefix_positions: int
    has_fixed_size: bool
    antialias: bool
    blocks_path: str
    grid_embeddings: type[nn.Module] | None
    no_split_modules: tuple[str, ...]

    @property
    def model_kwargs(self) -> dict[str, bool]:
        """Constructor options: no pooling layer where the class has one (ViT, DeiT)."""
        return {"add_pooling_layer": False} if self.grid_embeddings is None else {}

    def build(self, config: PreTrainedConfig) -> PreTrainedModel:
        """The encoder of `config`, randomly initialised."""
        return self.adapt(self.model_class(config, **self.model_kwargs))

    def from_pretrained(self, name_or_path: str) -> PreTrainedModel:
        """The pretrained encoder of a Hub id or folder (its bare model or its image classifier)."""
        return self.adapt(self.model_class.from_pretrained(name_or_path, **self.model_kwargs))

    def adapt(self, backbone: PreTrainedModel) -> PreTrainedModel:
        """Swaps in `grid_embeddings`: same parameters and names, one method overridden."""
        if self.grid_embeddings is not None:
            backbone.embeddings.__class__ = self.grid_embeddings
        return backbone


_VIT_LIKE = {"num_prefix_positions": 1, "has_fixed_size": True, "antialias": False, "blocks_path": "layers"}
_DINOV2_LIKE = {"num_prefix_positions": 1, "has_fixed_size": False, "blocks_path": "encoder.layer"}
BACKBONES: dict[str, BackboneSpec] = {
    spec.model_type: spec
    for spec in (
        BackboneSpec(
            "vit",
            ViTConfig,
            ViTModel,
            grid_embeddings=None,
            no_split_modules=("ViTEmbeddings", "ViTLayer"),
            **_VIT_LIKE,
        ),
        BackboneSpec(
            "deit",
            DeiTConfig,
            DeiTModel,
            grid_embeddings=None,
            no_split_modules=("DeiTEmbeddings", "DeiTLayer"),
            **{**_VIT_LIKE, "num_prefix_positions": 2},
        ),
        BackboneSpec(
            "dinov2",
            Dinov2Config,
            Dinov2Model,
            antialias=False,
            grid_embeddings=LATransformerDinov2Embeddings,
            no_split_modules=("LATransformerDinov2Embeddings", "Dinov2Layer"),
            **_DINOV2_LIKE,
        ),
        BackboneSpec(
            "dinov2_with_registers",
            Dinov2WithRegistersConfig,
            Dinov2WithRegistersModel,
            antialias=True,
            grid_embeddings=LATransformerDinov2WithRegistersEmbeddings,
            no_split_modules=("LATransformerDinov2WithRegistersEmbeddings", "Dinov2WithRegistersLayer"),
            **_DINOV2_LIKE,
        ),
    )
}
BACKBONE_EXAMPLES = "e.g. google/vit-base-patch16-224, facebook/deit-tiny-patch16-224, facebook/dinov2-small"


def backbone_spec(model_type: str | None) -> BackboneSpec:
    """The spec of `model_type`; `ValueError` naming the supported types when there is none."""
    if model_type not in BACKBONES:
        raise InvalidInputError(
            f"LA-Transformer has no backbone of model_type={model_type!r}: use one of "
            f"{', '.join(map(repr, BACKBONES))} ({BACKBONE_EXAMPLES})."
        )
    return BACKBONES[model_type]


def backbone_groups(backbone: nn.Module) -> BackboneGroups:
    """The stem, blocks and final norm of an encoder built from a `BackboneSpec`; `TypeError` for anything else."""
    spec = BACKBONES.get(getattr(getattr(backbone, "config", None), "model_type", None))
    blocks = backbone
    for name in spec.blocks_path.split(".") if spec else ("?",):
        blocks = getattr(blocks, name, None)
    if not isinstance(blocks, nn.ModuleList):
        raise TypeError(f"{type(backbone).__name__} is not an encoder of {', '.join(map(repr, BACKBONES))}.")
    return BackboneGroups(stem=backbone.embeddings, blocks=blocks, final_norm=backbone.layernorm)


def interpolate_position_embeddings(
    position_embeddings: torch.Tensor,
    source_grid: tuple[int, int],
    target_grid: tuple[int, int],
    num_prefix_positions: int = 1,
    antialias: bool = False,
) -> torch.Tensor:
    """
    Resizes position embeddings `(1, num_prefix_positions + rows * cols, hidden)` from `source_grid` to
    `target_grid` (rows, cols).

    The positions of the special tokens (1: CLS; 2 for DeiT: CLS and distillation) are kept; the patch positions
    are resampled bicubically over the grid (with `antialias`, as DINOv2 with registers does). Same grid: unchanged.
    """
    if tuple(source_grid) == tuple(target_grid):
        return position_embeddings
    hidden_size = position_embeddings.shape[-1]
    prefix_positions = position_embeddings[:, :num_prefix_positions]
    patch_positions = position_embeddings[:, num_prefix_positions:]
    grid = patch_positions.reshape(1, *source_grid, hidden_size).permute(0, 3, 1, 2)
    grid = F.interpolate(
        grid.float(), size=tuple(target_grid), mode="bicubic", align_corners=False, antialias=antialias
    )
    patch_positions = grid.permute(0, 2, 3, 1).reshape(1, -1, hidden_size).to(position_embeddings.dtype)
    return torch.cat([prefix_positions, patch_positions], dim=1)


__all__ = [
    "BACKBONES",
    "BackboneGroups",
    "BackboneSpec",
    "LATransformerDinov2Embeddings",
    "LATransformerDinov2WithRegistersEmbeddings",
    "backbone_groups",
    "backbone_spec",
    "interpolate_position_embeddings",
]
