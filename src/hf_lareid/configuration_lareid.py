"""LA-Transformer model configuration."""

from __future__ import annotations

import math
from typing import ClassVar

from transformers import ViTConfig
from transformers.configuration_utils import PreTrainedConfig

EMBEDDING_TYPES = ("gelt", "local")
HEAD_ACTIVATIONS = ("relu", "gelu", None)


def _pair(value: int | list[int] | tuple[int, int]) -> tuple[int, int]:
    """`224 -> (224, 224)`, `[256, 128] -> (256, 128)`: sizes are always (height, width)."""
    if isinstance(value, int):
        return (value, value)
    height, width = value
    return (int(height), int(width))


class LATransformerConfig(PreTrainedConfig):
    r"""
    Configuration of a [`LATransformerForReID`]: a ViT backbone plus the locally aware head of
    "Person Re-Identification with a Locally Aware Transformer" (Sharma et al., 2021).

    The default is the paper's baseline: ViT-B/16 at 224x224, 14 row parts, lambda 0.8.

    Args:
        backbone_config (`ViTConfig` or `dict`, *optional*):
            The ViT encoder. Its `image_size` and `patch_size` fix the patch grid, and so the number of
            parts (one per patch row). Saved as a nested dict with `"model_type": "vit"`. Defaults to
            `ViTConfig()` (ViT-B/16, 224x224).
        lambda_global (`float`, *optional*, defaults to 0.8):
            The paper's lambda in eq. 6, the weight of the global (CLS) token in each globally enhanced local
            token: `L_i = mean_j (Q_j + lambda * G) / (1 + lambda)`. The original public code's `lambda=8`
            weights the local token instead and equals `lambda_global = 1/8`.
        bottleneck_dim (`int`, *optional*, defaults to 256):
            Width of the bottleneck of every row classifier.
        head_dropout (`float`, *optional*, defaults to 0.5):
            Dropout probability inside every row classifier.
        head_activation (`str` or `None`, *optional*, defaults to `"relu"`):
            Activation after the BatchNorm of every row classifier: `"relu"` (the paper's text), `"gelu"`, or
            `None` (the original public code has none).
        embedding (`str`, *optional*, defaults to `"gelt"`):
            The test-time embedding. `"gelt"` (the paper): the row vectors `L_i` concatenated, then divided by
            the L2 norm of the whole vector. `"local"` (the original public code): the row-averaged patch
            tokens without the global token, each row divided by (its L2 norm times sqrt(num_parts)), then
            concatenated. Both have unit norm. Read at forward time, so it can be changed on a loaded model.
        verification_threshold (`float`, *optional*):
            Cosine similarity above which two embeddings are taken to show the same person, as calibrated by
            `hf_lareid.evaluation.calibrate_threshold`. `None` until calibrated.
        verification_calibration (`dict`, *optional*):
            The whole calibration behind `verification_threshold` (`ThresholdCalibration.to_dict()`: threshold,
            target and reached false-match rate, true-match rate, pair counts, the data it came from). Set both
            with [`~LATransformerConfig.set_verification_calibration`]; its threshold must equal
            `verification_threshold`.
        num_labels (`int`, *optional*, defaults to 2):
            Number of training identities (classes of every row classifier).

    Example:

    ```python
    >>> from hf_lareid import LATransformerConfig, LATransformerForReID
    >>> config = LATransformerConfig(backbone_config={"model_type": "vit", "image_size": [256, 128]}, num_labels=751)
    >>> config.grid_size, config.num_parts, config.embedding_dim
    ((16, 8), 16, 12288)
    >>> model = LATransformerForReID(config)
    ```
    """

    model_type = "la-transformer"
    # A plain `sub_configs` (not the newer `sub_configs_defaults` / `SubConfigSpec`) also runs on transformers < 5.24.
    sub_configs: ClassVar = {"backbone_config": ViTConfig}

    backbone_config: dict | ViTConfig | None = None
    lambda_global: float = 0.8
    bottleneck_dim: int = 256
    head_dropout: float = 0.5
    head_activation: str | None = "relu"
    embedding: str = "gelt"
    verification_threshold: float | None = None
    verification_calibration: dict | None = None

    def __post_init__(self, **kwargs):
        if isinstance(self.backbone_config, dict):
            backbone = dict(self.backbone_config)
            model_type = backbone.pop("model_type", "vit")
            if model_type != "vit":
                raise ValueError(
                    f"LATransformerConfig needs a ViT backbone, got backbone_config with model_type={model_type!r}. "
                    "Pass a ViTConfig or a dict with 'model_type': 'vit'."
                )
            self.backbone_config = ViTConfig(**backbone)
        elif self.backbone_config is None:
            self.backbone_config = ViTConfig()
        elif not isinstance(self.backbone_config, ViTConfig):
            raise ValueError(
                f"backbone_config must be a ViTConfig or a dict, got {type(self.backbone_config).__name__}."
            )
        if self.verification_calibration is not None and self.verification_threshold is None:
            self.verification_threshold = self.verification_calibration.get("threshold")
        super().__post_init__(**kwargs)
        self.validate_layout()

    def set_verification_calibration(self, calibration) -> None:
        """Stores a `ThresholdCalibration` (or its `to_dict()`) and its threshold as `verification_threshold`."""
        values = calibration.to_dict() if hasattr(calibration, "to_dict") else dict(calibration)
        self.verification_calibration = values
        self.verification_threshold = values.get("threshold")
        self.validate_layout()

    def validate_layout(self) -> None:
        """Checks every field and that the image size splits into whole patches; raises `ValueError` if not."""
        (height, width), (patch_h, patch_w) = self.image_size, self.patch_size
        if height % patch_h or width % patch_w:
            raise ValueError(
                f"image_size (height, width) = {(height, width)} is not divisible by patch_size {(patch_h, patch_w)}: "
                f"use a multiple of the patch size, e.g. {(max(1, height // patch_h) * patch_h, max(1, width // patch_w) * patch_w)}."
            )
        if self.embedding not in EMBEDDING_TYPES:
            raise ValueError(f"embedding must be one of {EMBEDDING_TYPES}, got {self.embedding!r}.")
        if self.head_activation not in HEAD_ACTIVATIONS:
            raise ValueError(f"head_activation must be one of {HEAD_ACTIVATIONS}, got {self.head_activation!r}.")
        if not (isinstance(self.lambda_global, (int, float)) and self.lambda_global >= 0):
            raise ValueError(f"lambda_global must be a number >= 0, got {self.lambda_global!r}.")
        if not (isinstance(self.bottleneck_dim, int) and self.bottleneck_dim > 0):
            raise ValueError(f"bottleneck_dim must be a positive integer, got {self.bottleneck_dim!r}.")
        if not (0.0 <= self.head_dropout < 1.0):
            raise ValueError(f"head_dropout must be in [0, 1), got {self.head_dropout!r}.")
        if self.verification_threshold is not None and not (-1.0 <= self.verification_threshold <= 1.0):
            raise ValueError(
                f"verification_threshold is a cosine similarity in [-1, 1], got {self.verification_threshold!r}."
            )
        calibration = self.verification_calibration
        if calibration is not None and (
            not isinstance(calibration, dict) or calibration.get("threshold") != self.verification_threshold
        ):
            raise ValueError(
                "verification_calibration must be a ThresholdCalibration.to_dict() whose threshold equals "
                f"verification_threshold ({self.verification_threshold!r}), got {calibration!r}: set both with "
                "config.set_verification_calibration(calibration)."
            )

    @property
    def image_size(self) -> tuple[int, int]:
        """Input size (height, width) of the backbone."""
        return _pair(self.backbone_config.image_size)

    @property
    def patch_size(self) -> tuple[int, int]:
        """Patch size (height, width) of the backbone."""
        return _pair(self.backbone_config.patch_size)

    @property
    def grid_size(self) -> tuple[int, int]:
        """Patch grid (rows, columns): (14, 14) at 224/16, (16, 8) at (256, 128)/16."""
        (height, width), (patch_h, patch_w) = self.image_size, self.patch_size
        return (height // patch_h, width // patch_w)

    @property
    def num_parts(self) -> int:
        """Number of locally aware parts R: one per patch row."""
        return self.grid_size[0]

    @property
    def hidden_size(self) -> int:
        """Width of every token of the backbone."""
        return self.backbone_config.hidden_size

    @property
    def embedding_dim(self) -> int:
        """Length of the test-time embedding: num_parts * hidden_size (10,752 for ViT-B/16 at 224)."""
        return self.num_parts * self.hidden_size

    @property
    def local_embedding_scale(self) -> float:
        """sqrt(num_parts): the per-row divisor of the `"local"` embedding, so the whole vector has unit norm."""
        return math.sqrt(self.num_parts)


__all__ = ["LATransformerConfig"]
