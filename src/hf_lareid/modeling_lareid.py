"""PyTorch LA-Transformer: a ViT-like encoder with the locally aware head of Sharma et al. (2021), eq. 6-9."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.utils import ModelOutput

from .backbones import (
    BACKBONE_EXAMPLES,
    BACKBONES,
    BackboneGroups,
    backbone_groups,
    backbone_spec,
    interpolate_position_embeddings,
)
from .configuration_lareid import (
    LATransformerConfig,
    check_embedding,
    check_parameter_memory,
    patch_grid,
    reid_crop_size,
    to_pair,
)
from .utils.errors import InvalidInputError
from .utils.integrity import (
    CONFIG_NAME,
    check_loading_info,
    explain_model_load_error,
    record_weights_checksums,
    remove_stale_weights,
)
from .utils.io import staged_replace

logger = logging.getLogger(__name__)


@dataclass
class LATransformerOutput(ModelOutput):
    """
    Output of [`LATransformerForReID`].

    `embeddings` comes first after `loss`, and again as `pooler_output`: without labels `outputs[0]` is the
    embedding, which is what `pipeline("image-feature-extraction")` returns (with or without `pool=True`). Read the
    other fields by name (`outputs.logits`), not by position.

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` are given):
            Sum over the row parts of the per-part cross-entropy.
        embeddings (`torch.FloatTensor` of shape `(batch_size, config.embedding_dim)`):
            Unit-norm test-time embedding, `"gelt"`, `"local"` or `"bottleneck"` as `config.embedding` says.
        logits (`torch.FloatTensor` of shape `(batch_size, num_parts, num_labels)`):
            Scores of every row classifier, before softmax.
        part_features (`torch.FloatTensor` of shape `(batch_size, num_parts, hidden_size)`):
            The globally enhanced local tokens `L_i` of eq. 6, the inputs of the row classifiers.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Backbone hidden states, one `(batch_size, num_special_tokens + num_patches, hidden_size)` tensor per
            layer plus the embeddings, when `output_hidden_states=True`.
        attentions (`tuple(torch.FloatTensor)`, *optional*):
            Backbone attention maps, one `(batch_size, num_heads, num_tokens, num_tokens)` tensor per layer
            (`num_tokens = num_special_tokens + num_patches`), when `output_attentions=True`.
        pooler_output (`torch.FloatTensor` of shape `(batch_size, config.embedding_dim)`):
            The same tensor as `embeddings`, under the name that `image-feature-extraction` reads with `pool=True`.
    """

    loss: torch.FloatTensor | None = None
    embeddings: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    part_features: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    pooler_output: torch.FloatTensor | None = None


class LATransformerRowPooling(nn.Module):
    """
    Averages the patch tokens of every grid row and blends in the global token (eq. 6).

    Input `(batch, num_special_tokens + rows * cols, hidden)`, the final LayerNorm output: the special tokens
    (CLS first; DeiT's distillation token or DINOv2's registers next), then the patches in raster order. G is the
    CLS token, or for DeiT what `config.global_token` says. Returns `(gelt, local)`, both `(batch, rows, hidden)`:
    `gelt[:, i] = mean_j (Q_j + lambda * G) / (1 + lambda)` over row i, and `local[:, i] = mean_j Q_j` (the plain
    row average used by the original code's test features).
    """

    def __init__(self, config: LATransformerConfig):
        super().__init__()
        self.config = config

    def forward(self, sequence_output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows, cols = self.config.grid_size
        lambda_global = self.config.lambda_global
        num_special = self.config.num_special_tokens
        batch_size, num_tokens, hidden_size = sequence_output.shape
        if num_tokens != num_special + rows * cols:
            raise InvalidInputError(
                f"expected {num_special + rows * cols} tokens ({num_special} special + {rows}x{cols} patches), got "
                f"{num_tokens}: the input image size does not match config.image_size {self.config.image_size}."
            )
        start, stop = self.config.global_token_span
        global_token = sequence_output[:, start:stop].mean(dim=1, keepdim=True)  # (batch, 1, hidden)
        patches = sequence_output[:, num_special:]
        local = patches.reshape(batch_size, rows, cols, hidden_size).mean(dim=2)  # (batch, rows, hidden)
        # The row mean of (Q_j + lambda G) / (1 + lambda) is (mean_j Q_j + lambda G) / (1 + lambda).
        gelt = (local + lambda_global * global_token) / (1.0 + lambda_global)
        return gelt, local


class LATransformerPartClassifier(nn.Module):
    """One row classifier: Linear -> BatchNorm1d -> [activation] -> Dropout -> Linear. `(batch, hidden) -> (batch, num_labels)`."""

    def __init__(self, config: LATransformerConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.bottleneck_dim)
        self.norm = nn.BatchNorm1d(config.bottleneck_dim)
        self.activation = ACT2FN[config.head_activation] if config.head_activation else nn.Identity()
        self.dropout = nn.Dropout(config.head_dropout)
        self.classifier = nn.Linear(config.bottleneck_dim, config.num_labels)

    def bottleneck(self, features: torch.Tensor) -> torch.Tensor:
        """The batch-normalised bottleneck feature (BNNeck): `(batch, hidden) -> (batch, bottleneck_dim)`."""
        return self.norm(self.dense(features))

    def classify(self, bottleneck_features: torch.Tensor) -> torch.Tensor:
        """Scores from the bottleneck feature: `(batch, bottleneck_dim) -> (batch, num_labels)`."""
        return self.classifier(self.dropout(self.activation(bottleneck_features)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classify(self.bottleneck(features))


def _rows_to_unit_vector(rows: torch.Tensor) -> torch.Tensor:
    """`(batch, rows, dim) -> (batch, rows * dim)`: each row divided by (its norm * sqrt(rows)), so every row weighs
    the same and the whole vector has unit norm."""
    return (F.normalize(rows, dim=-1) / rows.shape[1] ** 0.5).flatten(1)


def part_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """
    The paper's identity loss: the sum over row parts of each part's batch-mean cross-entropy.

    Args:
        logits: `(batch_size, num_parts, num_labels)` scores of the row classifiers.
        labels: `(batch_size,)` identity labels.
        label_smoothing: as in `torch.nn.functional.cross_entropy`; 0 gives the model's own loss.

    Returns:
        A scalar tensor.

    Example:

    ```python
    >>> part_cross_entropy(torch.zeros(2, 4, 10), torch.tensor([1, 3]))  # 4 parts * log(10)
    tensor(9.2103)
    ```
    """
    batch_size, num_parts, num_labels = logits.shape
    per_sample = F.cross_entropy(
        logits.reshape(-1, num_labels),
        labels.repeat_interleave(num_parts),
        reduction="none",
        label_smoothing=label_smoothing,
    )
    return per_sample.view(batch_size, num_parts).mean(dim=0).sum()


def embed_parts(
    gelt: torch.Tensor, local: torch.Tensor, embedding: str, bottleneck: torch.Tensor | None = None
) -> torch.Tensor:
    """
    The unit-norm test-time embedding from the pooled rows `gelt` and `local`, both `(batch, rows, hidden)`.

    `"gelt"`: the rows concatenated, divided by the norm of the whole vector. `"local"`: each plain row average
    divided by (its norm * sqrt(rows)), then concatenated. `"bottleneck"`: the same per-row normalisation of the
    row heads' batch-normalised bottleneck features `bottleneck` `(batch, rows, bottleneck_dim)`. Returns
    `(batch, rows * hidden)`, or `(batch, rows * bottleneck_dim)` for `"bottleneck"`.
    """
    if embedding == "gelt":
        return F.normalize(gelt.flatten(1), dim=-1)
    if embedding == "local":
        return _rows_to_unit_vector(local)
    if embedding == "bottleneck":
        if bottleneck is None:
            raise ValueError("the 'bottleneck' embedding needs the row heads' bottleneck features.")
        return _rows_to_unit_vector(bottleneck)
    check_embedding(embedding)  # raises: `embedding` is none of the three


class LATransformerPreTrainedModel(PreTrainedModel):
    """Weight initialisation and class attributes shared by the LA-Transformer models."""

    config_class = LATransformerConfig
    config: LATransformerConfig
    base_model_prefix = "vit"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = sorted({name for spec in BACKBONES.values() for name in spec.no_split_modules})
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True
    # The loss is a per-batch mean: let the Trainer divide it by the accumulation steps (see docs/original-code.md).
    accepts_loss_kwargs = False

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """
        `PreTrainedModel.from_pretrained`, loading the model whole or not at all: weights that the config needs but
        the file lacks (a lost encoder block), or weights the model has no place for, raise
        [`hf_lareid.utils.integrity.IncompleteModelError`] naming the file and the keys, never random weights in their
        place. Classifier heads of another size are swapped only when asked (`num_labels=N,
        ignore_mismatched_sizes=True`). A damaged weights file, weights of other shapes, a `config.json` that
        describes no LA-Transformer, or a model name that is no local folder while the Hub cannot be reached give
        one clear error (see `hf_lareid.utils.integrity`).
        """
        wants_info = kwargs.pop("output_loading_info", False)
        try:
            model, info = super().from_pretrained(
                pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs
            )
        except Exception as error:
            clearer = explain_model_load_error(pretrained_model_name_or_path, error, cls.config_class.model_type)
            if clearer is None:
                raise
            raise clearer from error
        check_loading_info(pretrained_model_name_or_path, info)
        return (model, info) if wants_info else model

    def _init_weights(self, module: nn.Module) -> None:
        """
        transformers' init, then the row heads as in PCB and the original LA-Transformer code: kaiming bottleneck
        (fan-out), BatchNorm weight ~ N(1, 0.02), classifier ~ N(0, 0.001), zero biases.

        The row heads' leaf modules (the Linear and BatchNorm1d layers) are matched by ownership, not the
        `LATransformerPartClassifier` around them: for custom code, transformers 5 marks a module without
        parameters of its own as initialised without calling `_init_weights` on it.
        """
        super()._init_weights(module)
        role = self._row_head_role(module)
        if role == "dense":
            init.kaiming_normal_(module.weight, a=0, mode="fan_out")
            init.zeros_(module.bias)
        elif role == "norm":
            init.normal_(module.weight, mean=1.0, std=0.02)
            init.zeros_(module.bias)
        elif role == "classifier":
            init.normal_(module.weight, std=0.001)
            init.zeros_(module.bias)

    def _row_head_role(self, module: nn.Module) -> str | None:
        """`"dense"`, `"norm"` or `"classifier"` when `module` is that layer of one of this model's row heads."""
        for head in getattr(self, "part_classifiers", ()):
            for role in ("dense", "norm", "classifier"):
                if getattr(head, role) is module:
                    return role
        return None

    def save_pretrained(self, save_directory: str | os.PathLike, is_main_process: bool = True, **kwargs: Any) -> Any:
        """
        [`PreTrainedModel.save_pretrained`], safe for a folder that already holds a model.

        The files are written to a staging folder beside their targets and then replace them one at a time, weights
        before `config.json` (see `utils.io.staged_replace`): a full disk or a crash while writing leaves the
        previous model loadable and unchanged. `config.json` records the SHA-256 of each weights file
        (`weights_sha256`), so [`verify_model_weights`] detects a damaged file or new weights beside an old config.
        Other files of the folder (`checkpoint-*`, a model card) stay. With `push_to_hub` or on a non-main process
        this is the plain transformers save.
        """
        if not is_main_process or kwargs.get("push_to_hub") or kwargs.get("distributed_checkpoint"):
            return super().save_pretrained(save_directory, is_main_process=is_main_process, **kwargs)
        directory = Path(save_directory)
        if directory.is_file():
            raise FileExistsError(f"cannot save a model to {directory}: it is a file, not a folder.")
        with staged_replace(directory, last=(CONFIG_NAME,)) as staging:
            result = super().save_pretrained(staging, **kwargs)
            weights = record_weights_checksums(staging)
        remove_stale_weights(directory, keep=weights)
        return result


class LATransformerForReID(LATransformerPreTrainedModel):
    """
    LA-Transformer for person re-identification.

    An encoder (a [`ViTModel`], [`DeiTModel`], [`Dinov2Model`] or [`Dinov2WithRegistersModel`], at `model.vit`
    whatever its type), row pooling of its patch tokens blended with the global token (eq. 6), and one classifier
    per patch row (eq. 7). Training minimises the sum of the per-row cross-entropies; prediction sums the per-row
    softmax scores (eq. 8-9); retrieval uses the unit-norm embedding of `config.embedding`.

    Example:

    ```python
    >>> import torch
    >>> from hf_lareid import LATransformerConfig, LATransformerForReID
    >>> config = LATransformerConfig(
    ...     backbone_config={"model_type": "vit", "image_size": [64, 32], "patch_size": 16, "hidden_size": 32,
    ...                      "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
    ...     num_labels=10)
    >>> model = LATransformerForReID(config).eval()
    >>> out = model(torch.randn(2, 3, 64, 32), labels=torch.tensor([1, 3]))
    >>> out.logits.shape, out.embeddings.shape  # 4 row parts
    (torch.Size([2, 4, 10]), torch.Size([2, 128]))
    ```
    """

    def __init__(self, config: LATransformerConfig):
        check_parameter_memory(config)  # before allocating: a typo in num_labels must not fill the memory first
        super().__init__(config)
        self.vit = backbone_spec(config.backbone_type).build(config.backbone_config)
        self.row_pooling = LATransformerRowPooling(config)
        self.part_classifiers = nn.ModuleList(LATransformerPartClassifier(config) for _ in range(config.num_parts))
        self.post_init()

    def activation_checkpointing_enable(
        self,
        activation_checkpointing_kwargs: dict[str, Any] | None = None,
        every_n_layers: int = 1,
        offload: bool = False,
    ) -> None:
        """
        transformers' activation checkpointing (the name `gradient_checkpointing_enable` is deprecated in 5.24),
        made to train every unfrozen block with `use_reentrant=True` too.

        Reentrant checkpointing gives a block's parameters no gradient when none of the block's inputs requires
        one, which is the case above frozen blocks (blockwise unfreezing): only the heads would train. With
        `use_reentrant=True` (also torch's default when the kwargs leave it out) the patch embeddings' output is
        marked as requiring a gradient (`enable_input_require_grads`), so every trainable block gets its gradient;
        backward then also runs through the frozen blocks, which the default `use_reentrant=False` skips.

        Example:

        ```python
        >>> from hf_lareid import LATransformerConfig, LATransformerForReID
        >>> backbone = {"model_type": "vit", "image_size": [64, 32], "patch_size": 16, "hidden_size": 32,
        ...             "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
        >>> model = LATransformerForReID(LATransformerConfig(backbone_config=backbone, num_labels=10))
        >>> model.activation_checkpointing_enable()  # or TrainingArguments(activation_checkpointing=True)
        >>> model.is_activation_checkpointing
        True
        ```
        """
        super().activation_checkpointing_enable(
            activation_checkpointing_kwargs, every_n_layers=every_n_layers, offload=offload
        )
        # transformers passes {"use_reentrant": False} when no kwargs are given; torch.utils.checkpoint defaults to True.
        if activation_checkpointing_kwargs is not None and activation_checkpointing_kwargs.get("use_reentrant", True):
            self.enable_input_require_grads()

    def activation_checkpointing_disable(self) -> None:
        """Turns activation checkpointing off, and the input-gradient hook of `use_reentrant=True` with it."""
        super().activation_checkpointing_disable()
        self.disable_input_require_grads()

    def backbone_groups(self) -> BackboneGroups:
        """The encoder's stem, blocks (bottom first) and final norm: what blockwise unfreezing freezes and thaws."""
        return backbone_groups(self.vit)

    def _check_pixel_values(self, pixel_values: torch.Tensor) -> None:
        expected = (self.config.backbone_config.num_channels, *self.config.image_size)
        if pixel_values.dim() != 4 or tuple(pixel_values.shape[1:]) != expected:
            raise InvalidInputError(
                f"expected pixel_values of shape (batch, {', '.join(map(str, expected))}), got "
                f"{tuple(pixel_values.shape)}: resize inputs with this model's image processor."
            )

    @contextlib.contextmanager
    def _eager_attention(self, needed: bool) -> Iterator[None]:
        """SDPA returns no attention maps: switch the backbone to eager attention for one call when they are asked for."""
        backbone_config = self.vit.config
        previous = backbone_config._attn_implementation
        if needed and previous != "eager":
            backbone_config._attn_implementation = "eager"
        try:
            yield
        finally:
            backbone_config._attn_implementation = previous

    def _encode(
        self, pixel_values: torch.Tensor, output_attentions: bool, output_hidden_states: bool
    ) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """Runs the backbone; returns `(gelt, local, backbone_outputs)`, both pooled `(batch, rows, hidden)`."""
        self._check_pixel_values(pixel_values)
        with self._eager_attention(output_attentions):
            outputs = self.vit(
                pixel_values, output_attentions=output_attentions, output_hidden_states=output_hidden_states
            )
        gelt, local = self.row_pooling(outputs.last_hidden_state)
        return gelt, local, outputs

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.LongTensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> LATransformerOutput | tuple:
        """
        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, 3, height, width)`):
                Normalised images at `config.image_size` (height, width).
            labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
                Identity labels in `[0, num_labels)`; when given, `loss` is the sum of the per-row cross-entropies.
            output_attentions (`bool`, *optional*):
                Return the backbone's attention maps (this call runs eager attention, as SDPA returns none).
            output_hidden_states (`bool`, *optional*):
                Return the backbone's hidden states.
            return_dict (`bool`, *optional*):
                Return a [`LATransformerOutput`] (default) or a plain tuple.
        """
        output_attentions = bool(output_attentions if output_attentions is not None else self.config.output_attentions)
        output_hidden_states = bool(
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict

        gelt, local, outputs = self._encode(pixel_values, output_attentions, output_hidden_states)
        bottleneck = self._bottleneck_features(gelt)  # (batch, parts, bottleneck_dim)
        logits = torch.stack([head.classify(bottleneck[:, i]) for i, head in enumerate(self.part_classifiers)], dim=1)

        loss = None
        if labels is not None:
            loss = part_cross_entropy(logits, labels)

        embeddings = embed_parts(gelt, local, self.config.embedding, bottleneck)
        output = LATransformerOutput(
            loss=loss,
            embeddings=embeddings,
            logits=logits,
            part_features=gelt,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            pooler_output=embeddings,
        )
        return output if return_dict else output.to_tuple()

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """
        Unit-norm test-time embeddings, without the classifier work.

        `(batch_size, 3, height, width) -> (batch_size, config.embedding_dim)`; `config.embedding` picks
        `"gelt"`, `"local"` or `"bottleneck"` (which runs the row heads' bottlenecks, not their classifiers).
        """
        gelt, local, _ = self._encode(pixel_values, output_attentions=False, output_hidden_states=False)
        bottleneck = self._bottleneck_features(gelt) if self.config.embedding == "bottleneck" else None
        return embed_parts(gelt, local, self.config.embedding, bottleneck)

    def _bottleneck_features(self, gelt: torch.Tensor) -> torch.Tensor:
        """The row heads' batch-normalised bottleneck features: `(batch, rows, hidden) -> (batch, rows, bottleneck_dim)`."""
        return torch.stack([head.bottleneck(gelt[:, i]) for i, head in enumerate(self.part_classifiers)], dim=1)

    @torch.no_grad()
    def predict(self, pixel_values: torch.Tensor) -> tuple[torch.LongTensor, torch.FloatTensor]:
        """
        Identity prediction of eq. 8-9: the per-row softmax scores summed, then argmax.

        Returns `(predictions, scores)`: `(batch_size,)` label indices and `(batch_size, num_labels)` summed scores.
        Runs in eval mode (no dropout, BatchNorm running statistics untouched) and restores the previous mode.
        """
        was_training = self.training
        self.eval()
        try:
            logits = self(pixel_values, return_dict=True).logits  # (batch, parts, labels)
        finally:
            self.train(was_training)
        scores = logits.softmax(dim=-1).sum(dim=1)
        return scores.argmax(dim=-1), scores

    @classmethod
    def from_backbone(
        cls,
        backbone_name_or_path: str,
        num_labels: int,
        image_size: int | tuple[int, int] | None = None,
        **config_kwargs: Any,
    ) -> LATransformerForReID:
        """
        Builds an LA-Transformer around pretrained backbone weights: how real training starts.

        Args:
            backbone_name_or_path: a ViT, DeiT, DINOv2 or DINOv2-with-registers model on the Hub
                (`"google/vit-base-patch16-224"`, `"facebook/dinov2-small"`) or a saved folder (the bare model or
                its image classifier).
            num_labels: number of training identities.
            image_size: input (height, width); re-ID crops are tall, e.g. `(256, 128)`, which the patch must divide
                (`(252, 126)` for patch 14). When the patch grid differs from the checkpoint's, its position
                embeddings are resampled once (bicubic over the grid, as the backbone itself would), never
                re-initialised. Defaults to the checkpoint's size for ViT and DeiT, and to the largest crop within
                256x128 that the patch divides for DINOv2 (252x126 at patch 14), which has no fixed size.
            config_kwargs: other [`LATransformerConfig`] fields (`lambda_global`, `embedding`, `global_token`, ...).

        Example:

        ```python
        With a Hub id (`"google/vit-base-patch16-224"`, `"facebook/dinov2-small"`) or, as here, a saved folder (a
        small random ViT and DINOv2, so that the example runs offline):

        >>> import tempfile
        >>> from transformers import Dinov2Config, Dinov2Model, ViTConfig, ViTModel
        >>> sizes = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
        >>> vit_dir, dinov2_dir = tempfile.mkdtemp(), tempfile.mkdtemp()
        >>> ViTModel(ViTConfig(image_size=224, patch_size=16, **sizes), add_pooling_layer=False).save_pretrained(vit_dir)
        >>> model = LATransformerForReID.from_backbone(vit_dir, num_labels=751, image_size=(256, 128))
        >>> model.config.num_parts  # 256 / 16 rows of patches
        16
        >>> Dinov2Model(Dinov2Config(image_size=518, patch_size=14, **sizes)).save_pretrained(dinov2_dir)
        >>> LATransformerForReID.from_backbone(dinov2_dir, num_labels=751).config.image_size
        (252, 126)
        ```
        """
        # A backbone class's from_pretrained would read any config as its own: check the model type on disk first.
        config_dict, _ = PreTrainedConfig.get_config_dict(backbone_name_or_path)
        model_type = config_dict.get("model_type")
        if model_type == cls.config_class.model_type:
            raise InvalidInputError(
                f"{backbone_name_or_path} is already an LA-Transformer: load it with "
                f"LATransformerForReID.from_pretrained({str(backbone_name_or_path)!r})."
            )
        if model_type not in BACKBONES:
            raise InvalidInputError(
                f"{backbone_name_or_path} holds a {model_type!r} model: LA-Transformer backbones are "
                f"{', '.join(map(repr, BACKBONES))} ({BACKBONE_EXAMPLES})."
            )
        spec = BACKBONES[model_type]
        backbone = spec.from_pretrained(backbone_name_or_path)
        backbone_config = copy.deepcopy(backbone.config)
        if image_size is None:
            image_size = (
                backbone.config.image_size if spec.has_fixed_size else reid_crop_size(backbone.config.patch_size)
            )
        backbone_config.image_size = list(to_pair(image_size))
        config = cls.config_class(backbone_config=backbone_config, num_labels=num_labels, **config_kwargs)
        model = cls(config)
        state = backbone.state_dict()
        key = "embeddings.position_embeddings"
        state[key] = interpolate_position_embeddings(
            state[key],
            patch_grid(backbone.config.image_size, backbone.config.patch_size),
            config.grid_size,
            num_prefix_positions=spec.num_prefix_positions,
            antialias=spec.antialias,
        )
        model.vit.load_state_dict(state)
        return model


__all__ = [
    "LATransformerForReID",
    "LATransformerOutput",
    "LATransformerPartClassifier",
    "LATransformerPreTrainedModel",
    "LATransformerRowPooling",
    "embed_parts",
]
