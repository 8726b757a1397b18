"""Converts checkpoints of the original public LA-Transformer code (timm ViT-B/16) into this package's format.

```bash
lareid convert-original net_best.pth converted/ [--lambda 8] [--num-labels auto]
```

The original code saves `model.state_dict()` of its `LATransformer` module: the timm ViT under `model.` (with
its unused ImageNet `model.head`), the aliases `cls_token` / `pos_embed` of `model.cls_token` / `model.pos_embed`,
and per row `classifier{i}.add_block.0` (Linear), `classifier{i}.add_block.1` (BatchNorm1d) and
`classifier{i}.classifier.0` (Linear). Its blend is `(G + lambda * Q_i) / (1 + lambda)` with `lambda = 8`: the
converted config stores the paper's convention `lambda_global = 1 / lambda`, no head activation and the
`"local"` test embedding the original evaluation used (see docs/original-code.md).
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import re
from pathlib import Path

import torch
from transformers import ViTConfig, ViTImageProcessorPil
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling

from .configuration_lareid import LATransformerConfig
from .modeling_lareid import LATransformerForReID
from .utils.errors import InvalidInputError
from .utils.integrity import DamagedFileError, check_torch_file
from .utils.io import atomic_folder
from .utils.output_guard import claim_outputs

logger = logging.getLogger(__name__)

# timm name (after `model.`) -> HF ViTModel name (under `vit.`); `{i}` is the block index.
_BACKBONE_RENAMES = {
    "cls_token": "embeddings.cls_token",
    "pos_embed": "embeddings.position_embeddings",
    "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
    "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
    "norm.weight": "layernorm.weight",
    "norm.bias": "layernorm.bias",
}
_BLOCK_RENAMES = {
    "norm1": "layernorm_before",
    "attn.proj": "attention.o_proj",
    "norm2": "layernorm_after",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
_HEAD_RENAMES = {
    "add_block.0": "dense",
    "add_block.1": "norm",
    "classifier.0": "classifier",
}
_IGNORED_KEYS = ("model.head.weight", "model.head.bias")  # timm's ImageNet head, unused by LA-Transformer
_ALIASES = {"cls_token": "model.cls_token", "pos_embed": "model.pos_embed"}
# timm ViTs use 64-wide attention heads (ViT-Ti/S/B/L: 3/6/12/16 heads); the state dict does not store the count.
_HEAD_DIM = 64
# The original training and test transforms: resize to 224x224 (bicubic), ImageNet mean/std.
_ORIGINAL_RESAMPLE = PILImageResampling.BICUBIC


class ConversionError(InvalidInputError):
    """The checkpoint does not have the layout of the original LA-Transformer code."""


def load_original_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """
    Reads an original checkpoint with `torch.load(..., weights_only=True)`: tensors only, no arbitrary pickles.

    Accepts a bare state dict or one under a `"state_dict"` / `"model"` key, with or without DataParallel's
    `module.` prefix.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}: pass the .pth file saved by the original code.")
    try:
        check_torch_file(path, fix="Pass the .pth file saved by the original LA-Transformer code.")
    except DamagedFileError as error:
        raise ConversionError(str(error)) from None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ConversionError(
            f"{str(path)!r} holds more than tensors (a pickled object), and loading it could run arbitrary code: "
            "only weights-only checkpoints are converted. Re-save it as a plain state dict "
            "(torch.save(model.state_dict(), path)) from code you trust."
        ) from error
    for key in ("state_dict", "model"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise ConversionError(f"{str(path)!r} is not a state dict (a dict of tensors).")
    if checkpoint and all(k.startswith("module.") for k in checkpoint):
        checkpoint = {k.removeprefix("module."): v for k, v in checkpoint.items()}
    return checkpoint


def original_config(
    state_dict: dict[str, torch.Tensor], lambda_code: float = 8.0, num_labels: int | None = None
) -> LATransformerConfig:
    """
    The [`LATransformerConfig`] of an original state dict: depth, width, MLP size, grid and classes are read
    from the tensor shapes; LayerNorm eps 1e-6 (timm), `lambda_global = 1 / lambda_code`, no head activation,
    `"local"` embedding.
    """
    try:
        hidden_size = state_dict["model.cls_token"].shape[-1]
        patch_size = state_dict["model.patch_embed.proj.weight"].shape[-1]
        num_patches = state_dict["model.pos_embed"].shape[1] - 1
        intermediate_size = state_dict["model.blocks.0.mlp.fc1.weight"].shape[0]
        checkpoint_labels, bottleneck_dim = state_dict["classifier0.classifier.0.weight"].shape
    except KeyError as error:
        raise ConversionError(f"not an original LA-Transformer state dict: key {error.args[0]!r} is missing.") from None
    num_layers = 1 + max(int(m.group(1)) for k in state_dict if (m := re.match(r"model\.blocks\.(\d+)\.", k)))
    grid = math.isqrt(num_patches)
    if grid * grid != num_patches:
        raise ConversionError(f"model.pos_embed holds {num_patches} patch positions, not a square grid.")
    if num_labels is not None and num_labels != checkpoint_labels:
        raise ConversionError(
            f"--num-labels {num_labels} does not match the checkpoint's classifiers ({checkpoint_labels} classes): "
            "use --num-labels auto."
        )
    if lambda_code <= 0:
        raise ConversionError(
            f"--lambda must be > 0 (the original code's weight of the local tokens), got {lambda_code}."
        )
    backbone_config = ViTConfig(
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=max(1, hidden_size // _HEAD_DIM),
        intermediate_size=intermediate_size,
        image_size=[grid * patch_size, grid * patch_size],
        patch_size=patch_size,
        qkv_bias="model.blocks.0.attn.qkv.bias" in state_dict,
        layer_norm_eps=1e-6,
        hidden_act="gelu",
    )
    return LATransformerConfig(
        backbone_config=backbone_config,
        num_labels=checkpoint_labels,
        lambda_global=1.0 / lambda_code,
        bottleneck_dim=bottleneck_dim,
        head_dropout=0.5,
        head_activation=None,
        embedding="local",
    )


def _rename(state_dict: dict[str, torch.Tensor], config: LATransformerConfig) -> dict[str, torch.Tensor]:
    """Consumes every original key (raising on leftovers) and returns the tensors under this package's names."""
    remaining = dict(state_dict)
    converted: dict[str, torch.Tensor] = {}

    for alias, target in _ALIASES.items():
        if alias in remaining:
            if target not in remaining or not torch.equal(remaining[alias], remaining[target]):
                raise ConversionError(f"top-level {alias!r} is not the same tensor as {target!r}.")
            del remaining[alias]
    for key in _IGNORED_KEYS:
        remaining.pop(key, None)
    for old, new in _BACKBONE_RENAMES.items():
        if f"model.{old}" in remaining:
            converted[f"vit.{new}"] = remaining.pop(f"model.{old}")

    hidden_size = config.hidden_size
    for i in range(config.backbone_config.num_hidden_layers):
        prefix, target = f"model.blocks.{i}.", f"vit.layers.{i}."
        for suffix in ("weight", "bias"):
            qkv = remaining.pop(f"{prefix}attn.qkv.{suffix}", None)
            if qkv is not None:
                # timm's fused projection stacks query, key, value along the output dimension.
                for name, part in zip(("q_proj", "k_proj", "v_proj"), qkv.split(hidden_size, dim=0)):
                    converted[f"{target}attention.{name}.{suffix}"] = part.clone()
            for old, new in _BLOCK_RENAMES.items():
                if f"{prefix}{old}.{suffix}" in remaining:
                    converted[f"{target}{new}.{suffix}"] = remaining.pop(f"{prefix}{old}.{suffix}")

    for i in range(config.num_parts):
        for old, new in _HEAD_RENAMES.items():
            prefix = f"classifier{i}.{old}."
            for key in [k for k in remaining if k.startswith(prefix)]:
                converted[f"part_classifiers.{i}.{new}.{key[len(prefix) :]}"] = remaining.pop(key)

    if remaining:
        raise ConversionError(
            f"{len(remaining)} tensors of the checkpoint have no place in the model (is it an original "
            f"LA-Transformer checkpoint with {config.num_parts} row classifiers?): {sorted(remaining)}"
        )
    return converted


def convert_original_state_dict(
    state_dict: dict[str, torch.Tensor], lambda_code: float = 8.0, num_labels: int | None = None
) -> LATransformerForReID:
    """
    Builds an [`LATransformerForReID`] (in eval mode) from an original state dict. Every tensor must be used and
    every model weight filled, else a [`ConversionError`] names the leftover or missing keys.
    """
    config = original_config(state_dict, lambda_code=lambda_code, num_labels=num_labels)
    converted = _rename(state_dict, config)
    model = LATransformerForReID(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(converted))
    wrong_shape = sorted(k for k in converted if k in expected and converted[k].shape != expected[k].shape)
    if missing or wrong_shape:
        raise ConversionError(
            "the checkpoint does not fill the model: "
            + (f"missing {missing}" if missing else "")
            + ("; " if missing and wrong_shape else "")
            + (
                f"wrong shapes {[(k, tuple(converted[k].shape), tuple(expected[k].shape)) for k in wrong_shape]}"
                if wrong_shape
                else ""
            )
        )
    model.load_state_dict(converted, strict=True)
    return model.eval()


def original_image_processor(config: LATransformerConfig) -> ViTImageProcessorPil:
    """The original preprocessing: resize to the model's input size (bicubic), rescale, ImageNet mean/std."""
    height, width = config.image_size
    return ViTImageProcessorPil(
        do_resize=True,
        size={"height": height, "width": width},
        resample=_ORIGINAL_RESAMPLE,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=list(IMAGENET_DEFAULT_MEAN),
        image_std=list(IMAGENET_DEFAULT_STD),
    )


def convert_original_checkpoint(
    path: str | os.PathLike, out_dir: str | os.PathLike, lambda_code: float = 8.0, num_labels: int | None = None
) -> LATransformerForReID:
    """
    Converts the original checkpoint at `path` into `out_dir` (`config.json`, `model.safetensors`,
    `preprocessor_config.json`), which `LATransformerForReID.from_pretrained` / `AutoModel.from_pretrained` load.

    `lambda_code` is the ORIGINAL code's lambda (its blend is `(G + lambda * Q) / (1 + lambda)`, default 8);
    `num_labels=None` reads the class count from the classifiers. `out_dir` must not exist, be empty or hold only an
    earlier conversion (anything else is refused, `output_guard.ForeignFileError`); it is written through a temporary
    folder, so an interrupted conversion leaves nothing half-written.

    Example (a tiny original checkpoint of random weights: one block, one 64-wide head, 32x32 images in 16-pixel
    patches, so 2 rows of patches and 2 row classifiers; the real one is ViT-B/16 at 224, with 14):

    ```python
    >>> import torch
    >>> from hf_lareid import LATransformerForReID
    >>> width, patch, grid, bottleneck, classes = 64, 16, 2, 16, 3
    >>> shapes = {"model.cls_token": (1, 1, width), "model.pos_embed": (1, 1 + grid * grid, width),
    ...           "model.patch_embed.proj.weight": (width, 3, patch, patch), "model.patch_embed.proj.bias": (width,),
    ...           "model.norm.weight": (width,), "model.norm.bias": (width,)}
    >>> block = {"norm1": (width,), "attn.qkv": (3 * width, width), "attn.proj": (width, width), "norm2": (width,),
    ...          "mlp.fc1": (2 * width, width), "mlp.fc2": (width, 2 * width)}
    >>> row_head = {"add_block.0": (bottleneck, width), "add_block.1": (bottleneck,), "classifier.0": (classes, bottleneck)}
    >>> for prefix, layers in [("model.blocks.0.", block)] + [(f"classifier{row}.", row_head) for row in range(grid)]:
    ...     for name, shape in layers.items():  # a Linear or LayerNorm / BatchNorm: weight and bias
    ...         shapes |= {f"{prefix}{name}.weight": shape, f"{prefix}{name}.bias": shape[:1]}
    ...     if prefix.startswith("classifier"):  # the BatchNorm's statistics
    ...         shapes |= {f"{prefix}add_block.1.running_mean": (bottleneck,), f"{prefix}add_block.1.running_var":
    ...                    (bottleneck,), f"{prefix}add_block.1.num_batches_tracked": ()}
    >>> torch.save({name: torch.rand(shape) + 0.5 for name, shape in shapes.items()}, "net_best.pth")
    >>> model = convert_original_checkpoint("net_best.pth", "la-transformer-tiny")
    >>> model.config.num_parts, model.config.lambda_global, model.config.embedding
    (2, 0.125, 'local')
    >>> reloaded = LATransformerForReID.from_pretrained("la-transformer-tiny")  # as any transformers model folder
    >>> pixel_values = torch.randn(1, 3, 32, 32)  # (batch, 3, height, width), as the saved image processor makes
    >>> with torch.no_grad():
    ...     embeddings = reloaded.embed(pixel_values)
    >>> embeddings.shape  # (batch, num_parts * width)
    torch.Size([1, 128])
    >>> bool(torch.allclose(embeddings, model.embed(pixel_values)))
    True
    ```
    """
    out_dir = Path(out_dir)
    # An empty out_dir, or an earlier conversion (recorded in its parent's manifest), may be replaced.
    with claim_outputs([out_dir], fix="choose a new output folder"):
        model = convert_original_state_dict(
            load_original_state_dict(path), lambda_code=lambda_code, num_labels=num_labels
        )
        with atomic_folder(out_dir, replace_existing=out_dir.exists()) as staging:
            model.save_pretrained(staging)
            original_image_processor(model.config).save_pretrained(staging)
    logger.info(
        "Converted %s -> %s: %d blocks, width %d, %d parts, %d classes, lambda_global %.4g.",
        path,
        out_dir,
        model.config.backbone_config.num_hidden_layers,
        model.config.hidden_size,
        model.config.num_parts,
        model.config.num_labels,
        model.config.lambda_global,
    )
    return model


__all__ = [
    "ConversionError",
    "convert_original_checkpoint",
    "convert_original_state_dict",
    "load_original_state_dict",
    "original_config",
    "original_image_processor",
]
