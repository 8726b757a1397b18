"""Tiny random LA-Transformer configs and models: one factory per geometry the tests need.

- `tiny_backbone` / `tiny_backbone_config`: a bare tiny backbone (width 32, 2 blocks, 2 heads) of each model type;
  ViT and DeiT take (32, 16) images in patches of 4 (an 8x4 grid, 8 row parts), DINOv2 (28, 14) in patches of 7.
- `tiny_config`: (64, 32) images in patches of 16 (4 row parts x 2 columns), the size of the `tiny_image_processor`
  fixture: the model of the pipeline, feature, CLI and web tests.
- `tiny_training_config` / `tiny_training_model`: 4 blocks (for blockwise unfreezing), (32, 16) images in patches of
  8 (4 row parts), no head dropout: the model of the training tests; `tiny_training_arguments`: their short CPU run.

tests/ is on sys.path through tests/conftest.py (and the DDP workers' PYTHONPATH), so any test imports it.
"""

from __future__ import annotations

import torch
from transformers import AutoConfig, PretrainedConfig

from hf_lareid import LATransformerConfig, LATransformerForReID

TINY_BACKBONE_LAYOUTS = {
    "vit": {"image_size": [32, 16], "patch_size": 4, "intermediate_size": 37},
    "deit": {"image_size": [32, 16], "patch_size": 4, "intermediate_size": 37},
    "dinov2": {"image_size": [28, 14], "patch_size": 7},
    "dinov2_with_registers": {"image_size": [28, 14], "patch_size": 7, "num_register_tokens": 3},
}
"""The tall input layout of each backbone type (its special tokens come on top)."""

TRAINING_NUM_LABELS = 6
TRAINING_NUM_BLOCKS = 4


def tiny_backbone(model_type: str = "vit", **overrides) -> dict:
    """The `backbone_config` dict of a tiny backbone of `model_type` (layout of `TINY_BACKBONE_LAYOUTS`)."""
    tiny = {"model_type": model_type, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
    return {**tiny, **TINY_BACKBONE_LAYOUTS[model_type], **overrides}


def tiny_backbone_config(model_type: str = "vit", **overrides) -> PretrainedConfig:
    """`tiny_backbone` as its config class (`ViTConfig`, `DeiTConfig`, `Dinov2Config`, ...)."""
    return AutoConfig.for_model(**tiny_backbone(model_type, **overrides))


def tiny_config(**overrides) -> LATransformerConfig:
    """(64, 32) input, patch 16 -> 4 row parts x 2 columns, width 32, 10 labels; `backbone={...}` overrides its
    backbone fields, the other keywords the config's."""
    backbone = {
        **tiny_backbone(image_size=[64, 32], patch_size=16, intermediate_size=64, layer_norm_eps=1e-6),
        **overrides.pop("backbone", {}),
    }
    return LATransformerConfig(backbone_config=backbone, num_labels=overrides.pop("num_labels", 10), **overrides)


def tiny_training_config(**overrides) -> LATransformerConfig:
    """4 blocks, width 32, (32, 16) inputs, patch 8: 4 row parts, `TRAINING_NUM_LABELS` labels, no head dropout."""
    fields = dict(
        backbone_config=tiny_backbone(patch_size=8, num_hidden_layers=TRAINING_NUM_BLOCKS, intermediate_size=64),
        num_labels=TRAINING_NUM_LABELS,
        bottleneck_dim=16,
        head_dropout=0.0,
    )
    fields.update(overrides)
    return LATransformerConfig(**fields)


def tiny_training_model(seed: int = 0, **overrides) -> LATransformerForReID:
    """A fresh `LATransformerForReID(tiny_training_config(**overrides))` with weights drawn from `seed`."""
    torch.manual_seed(seed)
    return LATransformerForReID(tiny_training_config(**overrides))


def tiny_training_arguments(output_dir, **overrides):
    """`LATransformerTrainingArguments` of a short, quiet, reproducible CPU run: batch 4, learning rate 1e-3, seed 0, no
    checkpoints, no DataLoader workers, no progress bars or reports; `overrides` (any field) win."""
    from hf_lareid.training import LATransformerTrainingArguments  # the Trainer's import only where a test trains

    fields = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
        save_strategy="no",
        seed=0,
        dataloader_num_workers=0,
    )
    return LATransformerTrainingArguments(**{**fields, **overrides})
