"""LA-Transformer model configuration."""

from __future__ import annotations

import math
import os
from typing import ClassVar

from transformers import AutoConfig, ViTConfig
from transformers.configuration_utils import PreTrainedConfig

from .backbones import BACKBONES
from .evaluation.threshold import resolve_verification
from .utils.errors import InvalidInputError

BACKBONE_CONFIG_CLASSES = tuple(spec.config_class for spec in BACKBONES.values())
EMBEDDING_TYPES = ("gelt", "local", "bottleneck")
HEAD_ACTIVATIONS = ("relu", "gelu", None)
# Which special token is the global token G: DeiT's CLS, its distillation token, or their mean. Only DeiT has a choice.
GLOBAL_TOKENS = ("cls", "distillation", "mean")
_GLOBAL_TOKEN_SPANS = {"cls": (0, 1), "distillation": (1, 2), "mean": (0, 2)}
# A re-ID crop is twice as tall as wide; 256x128 is the usual one.
REID_CROP = (256, 128)


def to_pair(value: int | list[int] | tuple[int, int]) -> tuple[int, int]:
    """`224 -> (224, 224)`, `[256, 128] -> (256, 128)`: sizes are always (height, width)."""
    if isinstance(value, int):
        return (value, value)
    height, width = value
    return (int(height), int(width))


def patch_grid(
    image_size: int | list[int] | tuple[int, int], patch_size: int | list[int] | tuple[int, int]
) -> tuple[int, int]:
    """Patch grid (rows, columns) of an image size and a patch size: `(256, 128), 16 -> (16, 8)`."""
    (height, width), (patch_h, patch_w) = to_pair(image_size), to_pair(patch_size)
    return (height // patch_h, width // patch_w)


def check_embedding(embedding: str) -> None:
    """A `ValueError` unless `embedding` is one of `EMBEDDING_TYPES` (which test-time embedding a model returns)."""
    if embedding not in EMBEDDING_TYPES:
        raise InvalidInputError(f"embedding must be one of {EMBEDDING_TYPES}, got {embedding!r}.")


def reid_crop_size(patch_size: int | tuple[int, int]) -> tuple[int, int]:
    """
    The largest crop within 256x128 whose sides the patch divides: `16 -> (256, 128)`, `14 -> (252, 126)`.

    The default input size of backbones that have no fixed size of their own (DINOv2 interpolates its position
    embeddings to any input), e.g. in `LATransformerForReID.from_backbone`.
    """
    (patch_h, patch_w), (height, width) = to_pair(patch_size), REID_CROP
    return (height // patch_h * patch_h, width // patch_w * patch_w)


def backbone_config_from_dict(backbone: dict) -> PreTrainedConfig:
    """A backbone config from its dict (`"model_type"` picks the class, `"vit"` when missing); ValueError if unsupported."""
    backbone = dict(backbone)
    model_type = backbone.pop("model_type", "vit")
    if model_type not in BACKBONES:
        raise InvalidInputError(
            f"LATransformerConfig has no backbone of model_type={model_type!r}: use one of "
            f"{', '.join(map(repr, BACKBONES))}."
        )
    return BACKBONES[model_type].config_class(**backbone)


def _not_an_lareid_checkpoint_message(path: str, model_type: str) -> str:
    """One line for a folder that holds another model type: what it is, and how to build an LA-Transformer from it."""
    if model_type in BACKBONES:
        return (
            f"{path} holds a {model_type!r} model, not an LA-Transformer: build one from it with "
            f"LATransformerForReID.from_backbone({path!r}, num_labels=...)."
        )
    return (
        f"{path} holds a {model_type!r} model, not an LA-Transformer (model_type 'la-transformer'); "
        f"LA-Transformer backbones are {', '.join(map(repr, BACKBONES))}."
    )


class LATransformerConfig(PreTrainedConfig):
    r"""
    Configuration of a [`LATransformerForReID`]: a transformer backbone plus the locally aware head of
    "Person Re-Identification with a Locally Aware Transformer" (Sharma et al., 2021).

    The default is the paper's baseline: ViT-B/16 at 224x224, 14 row parts, lambda 0.8.

    Args:
        backbone_config (`ViTConfig`, `DeiTConfig`, `Dinov2Config`, `Dinov2WithRegistersConfig` or `dict`, *optional*):
            The encoder. Its `image_size` and `patch_size` fix the patch grid, and so the number of parts (one per
            patch row); its type fixes the special tokens before the patches (`num_special_tokens`): ViT and DINOv2
            have a CLS token, DeiT a CLS and a distillation token, DINOv2 with registers a CLS token and
            `num_register_tokens` registers. Saved as a nested dict with its `"model_type"` (`"vit"`, `"deit"`,
            `"dinov2"` or `"dinov2_with_registers"`; a dict without one is a ViT). Defaults to `ViTConfig()`
            (ViT-B/16, 224x224).
        global_token (`str`, *optional*, defaults to `"cls"`):
            Which special token is the global token G of eq. 6: `"cls"`, or, for a DeiT backbone only, its
            `"distillation"` token or the `"mean"` of the two.
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
            concatenated. `"bottleneck"` (the BNNeck of Luo et al., "Bag of Tricks and a Strong Baseline for Deep
            Person Re-identification", 2019): each row's batch-normalised bottleneck feature (the row classifier's
            Linear + BatchNorm1d output, before activation and dropout), each row divided by (its L2 norm times
            sqrt(num_parts)), then concatenated; its length is `num_parts * bottleneck_dim`. The classifiers train on
            these normalised features while a triplet loss, if any, acts on the features before the norm (the
            `"gelt"` vectors), so the two losses do not pull one feature space in two directions. All three have
            unit norm. Read at forward time, so it can be changed on a loaded model.
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
    >>> dinov2 = LATransformerConfig(backbone_config={"model_type": "dinov2", "image_size": [252, 126]})
    >>> dinov2.grid_size, dinov2.num_special_tokens  # patch 14
    ((18, 9), 1)
    ```
    """

    model_type = "la-transformer"
    # `pooler_output` repeats `embeddings` (for the image-feature-extraction task): the Trainer gathers it once.
    keys_to_ignore_at_inference: ClassVar = ["pooler_output"]
    # A plain `sub_configs` (not the newer `sub_configs_defaults` / `SubConfigSpec`) also runs on transformers < 5.24.
    # transformers only reads its keys (to pass dtype and attention settings down); the backbone class varies.
    sub_configs: ClassVar = {"backbone_config": AutoConfig}

    backbone_config: dict | PreTrainedConfig | None = None
    lambda_global: float = 0.8
    bottleneck_dim: int = 256
    head_dropout: float = 0.5
    head_activation: str | None = "relu"
    embedding: str = "gelt"
    global_token: str = "cls"
    verification_threshold: float | None = None
    verification_calibration: dict | None = None

    def __post_init__(self, **kwargs):
        if isinstance(self.backbone_config, dict):
            self.backbone_config = backbone_config_from_dict(self.backbone_config)
        elif self.backbone_config is None:
            self.backbone_config = ViTConfig()
        elif type(self.backbone_config) not in BACKBONE_CONFIG_CLASSES:
            raise InvalidInputError(
                f"backbone_config must be a dict or one of {', '.join(c.__name__ for c in BACKBONE_CONFIG_CLASSES)}, "
                f"got {type(self.backbone_config).__name__}."
            )
        self.verification_threshold, self.verification_calibration = resolve_verification(
            self.verification_threshold, self.verification_calibration
        )
        if isinstance(kwargs.get("num_labels"), int):  # before transformers builds one id2label entry per label
            check_parameter_memory(self, kwargs["num_labels"])
        super().__post_init__(**kwargs)
        self.validate_layout()

    def set_verification_calibration(self, calibration) -> None:
        """Stores a `ThresholdCalibration` (or its `to_dict()`) and its threshold as `verification_threshold`."""
        self.verification_threshold, self.verification_calibration = resolve_verification(None, calibration)

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs) -> tuple[dict, dict]:
        """transformers' reader, refusing (in one line) a folder that holds another model, e.g. a plain ViT."""
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        model_type = config_dict.get("model_type")
        if model_type is not None and model_type != cls.model_type:
            raise InvalidInputError(_not_an_lareid_checkpoint_message(str(pretrained_model_name_or_path), model_type))
        return config_dict, kwargs

    def validate_layout(self) -> None:
        """Checks every field and that the image size splits into whole patches; raises `ValueError` if not."""
        (height, width), (patch_h, patch_w) = self.image_size, self.patch_size
        if height % patch_h or width % patch_w:
            raise InvalidInputError(
                f"image_size (height, width) = {(height, width)} is not divisible by patch_size {(patch_h, patch_w)}: "
                f"use a multiple of the patch size, e.g. {(max(1, height // patch_h) * patch_h, max(1, width // patch_w) * patch_w)}."
            )
        check_embedding(self.embedding)
        if self.global_token not in GLOBAL_TOKENS:
            raise InvalidInputError(f"global_token must be one of {GLOBAL_TOKENS}, got {self.global_token!r}.")
        if self.global_token != "cls" and self.backbone_type != "deit":
            raise InvalidInputError(
                f"global_token={self.global_token!r} needs a DeiT backbone (a distillation token); a "
                f"{self.backbone_type!r} backbone has only 'cls'."
            )
        if self.head_activation not in HEAD_ACTIVATIONS:
            raise InvalidInputError(f"head_activation must be one of {HEAD_ACTIVATIONS}, got {self.head_activation!r}.")
        if not (isinstance(self.lambda_global, (int, float)) and self.lambda_global >= 0):
            raise InvalidInputError(f"lambda_global must be a number >= 0, got {self.lambda_global!r}.")
        if not (isinstance(self.bottleneck_dim, int) and self.bottleneck_dim > 0):
            raise InvalidInputError(f"bottleneck_dim must be a positive integer, got {self.bottleneck_dim!r}.")
        if not (0.0 <= self.head_dropout < 1.0):
            raise InvalidInputError(f"head_dropout must be in [0, 1), got {self.head_dropout!r}.")
        resolve_verification(self.verification_threshold, self.verification_calibration)

    @property
    def image_size(self) -> tuple[int, int]:
        """Input size (height, width) of the backbone."""
        return to_pair(self.backbone_config.image_size)

    @property
    def patch_size(self) -> tuple[int, int]:
        """Patch size (height, width) of the backbone."""
        return to_pair(self.backbone_config.patch_size)

    @property
    def grid_size(self) -> tuple[int, int]:
        """Patch grid (rows, columns): (14, 14) at 224/16, (16, 8) at (256, 128)/16."""
        return patch_grid(self.image_size, self.patch_size)

    @property
    def num_parts(self) -> int:
        """Number of locally aware parts R: one per patch row."""
        return self.grid_size[0]

    @property
    def backbone_type(self) -> str:
        """The backbone's `model_type`: `"vit"`, `"deit"`, `"dinov2"` or `"dinov2_with_registers"`."""
        return self.backbone_config.model_type

    @property
    def num_special_tokens(self) -> int:
        """Tokens before the patch tokens: 1 (CLS) for ViT and DINOv2, 2 for DeiT, 1 + registers for DINOv2 with registers."""
        registers = int(getattr(self.backbone_config, "num_register_tokens", 0) or 0)
        return BACKBONES[self.backbone_type].num_prefix_positions + registers

    @property
    def global_token_span(self) -> tuple[int, int]:
        """`(start, stop)`: G is the mean of tokens `start..stop-1`: `(0, 1)` (CLS), DeiT's `(1, 2)` or `(0, 2)`."""
        return _GLOBAL_TOKEN_SPANS[self.global_token]

    @property
    def hidden_size(self) -> int:
        """Width of every token of the backbone."""
        return self.backbone_config.hidden_size

    @property
    def embedding_dim(self) -> int:
        """Length of the test-time embedding: num_parts * hidden_size (10,752 for ViT-B/16 at 224), or
        num_parts * bottleneck_dim for the `"bottleneck"` embedding."""
        return self.num_parts * (self.bottleneck_dim if self.embedding == "bottleneck" else self.hidden_size)

    @property
    def local_embedding_scale(self) -> float:
        """sqrt(num_parts): the per-row divisor of the `"local"` embedding, so the whole vector has unit norm."""
        return math.sqrt(self.num_parts)


def _machine_memory_bytes() -> int | None:
    """The machine's physical memory in bytes (`None` where the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_parameter_memory(
    config: LATransformerConfig, num_labels: int | None = None, memory_bytes: int | None = None
) -> None:
    """
    Raises `ValueError` naming the config field at fault when the float32 parameters of the model `config`
    describes cannot fit in `memory_bytes` (default: this machine's memory), before anything is allocated: the row
    classifiers hold `num_parts * bottleneck_dim * num_labels` weights, the encoder about
    `12 * num_hidden_layers * hidden_size**2`. `num_labels` replaces the config's (a value not yet set: transformers
    builds an `id2label` entry per label when it is set, itself gigabytes for a typo).
    """
    memory_bytes = _machine_memory_bytes() if memory_bytes is None else memory_bytes
    labels = config.num_labels if num_labels is None else num_labels
    backbone = config.backbone_config
    hidden, layers = int(backbone.hidden_size), int(backbone.num_hidden_layers)
    intermediate = int(getattr(backbone, "intermediate_size", 4 * hidden) or 4 * hidden)
    encoder = layers * (4 * hidden * hidden + 2 * hidden * intermediate)
    heads = config.num_parts * (hidden * config.bottleneck_dim + (config.bottleneck_dim + 1) * int(labels))
    needed = 4 * (encoder + heads)
    if memory_bytes is None or needed <= memory_bytes:
        return
    if heads >= encoder:
        field = f"num_labels = {int(labels):,}"
        hint = "num_labels is the number of training identities (751 for Market-1501)"
    else:
        field = f"hidden_size = {hidden:,} and num_hidden_layers = {layers:,} of backbone_config"
        hint = "check the backbone_config sizes (ViT-B/16: 768 and 12)"
    raise InvalidInputError(
        f"the config's {field} gives a model of {(encoder + heads) / 1e9:.1f} billion parameters "
        f"({needed / 2**30:.0f} GiB in float32), more than this machine's {memory_bytes / 2**30:.0f} GiB of memory: "
        f"{hint}; fix config.json."
    )


__all__ = ["GLOBAL_TOKENS", "LATransformerConfig", "check_parameter_memory", "reid_crop_size"]
