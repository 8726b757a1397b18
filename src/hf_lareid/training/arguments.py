"""The arguments of a training run: their dataclasses, their defaults (a setup's, the run's own) and their parsing.

[`parse_arguments`] reads command-line flags (`lareid train`, `examples/train.py`); [`build_arguments`] takes the
same values typed, for Python callers such as `lareid demo`. Both give a [`TrainArguments`], which
`hf_lareid.training.run.prepare_trainer` takes.

Example:

```python
>>> from hf_lareid.training.arguments import build_arguments, parse_arguments
>>> arguments = parse_arguments(["--output_dir", "out", "--max_steps", "6"])
>>> arguments.training.max_steps, arguments.model.backbone  # the tiny setup, from scratch
(6, 'random')
>>> build_arguments({"output_dir": "out", "max_steps": 6}).training.max_steps
6
```
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

import torch
from transformers import HfArgumentParser, PreTrainedConfig, SchedulerType, TrainingArguments
from transformers.image_processing_base import ImageProcessingMixin

from ..configuration_lareid import LATransformerConfig, reid_crop_size
from ..data import REID_DATASETS
from ..embedding.precision import bf16_pays
from ..hub.modelcard import DEFAULT_LICENSE
from ..hub.setups import load_setup
from .callbacks import UNFREEZE_SCHEDULES

logger = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "adamw", "hf")
RANDOM_BACKBONE = "random"
# A setup's training_args.json keys that are notes for people, not arguments.
# num_unfreeze_blocks is Algorithm 1's b, the encoder's depth (0 for the from-scratch tiny setup): the backbone
# decides (see `uses_blockwise_unfreezing`).
SETUP_NOTES = ("source", "num_train_classes", "train_datasets", "lambda_global", "num_unfreeze_blocks")
AUTO_SCHEDULER = "auto"
ONE_CYCLE = "one_cycle"
"""torch's `OneCycleLR` (see [`LATransformerTrainingArguments`]), a schedule transformers does not have."""


@dataclass
class LATransformerTrainingArguments(TrainingArguments):
    """
    [`TrainingArguments`] with the LA-Transformer defaults and options.

    Changed defaults: `weight_decay=5e-4` and `max_grad_norm=0` (no gradient clipping), both the original code's;
    `remove_unused_columns=False` (the transforms need the `image` column), `lr_scheduler_type="auto"` (constant when
    a [`BlockwiseUnfreezeCallback`] is on, since its step decay replaces the schedule; linear otherwise).

    `lr_scheduler_type="one_cycle"` is torch's `OneCycleLR`, stepped every batch: `max_lr=learning_rate`,
    `pct_start` = the warm-up share (`warmup_steps` below 1 is that share; from 1 it is a step count), every other
    argument torch's default (cosine annealing, `div_factor` 25, `final_div_factor` 1e4, `cycle_momentum` on, which
    moves Adam's beta1 between 0.95 and 0.85).

    `label_smoothing_factor` (the Trainer's own name) is an alias of `label_smoothing`: this Trainer computes its own
    loss, so the Trainer's label smoother would never run; giving both with different values raises `ValueError`.

    Example:

    ```python
    >>> args = LATransformerTrainingArguments("out", optimizer="adam", triplet_loss_weight=1.0, label_smoothing=0.1)
    >>> args.optimizer, args.label_smoothing, args.max_grad_norm  # no gradient clipping, as the original code
    ('adam', 0.1, 0.0)
    ```
    """

    optimizer: str = field(
        default="adam",
        metadata={
            "help": "adam: torch.optim.Adam with L2 weight decay on every parameter, as the paper's code; adamw: "
            "torch.optim.AdamW (decoupled weight decay; none on biases and norms unless --decay_biases_and_norms); "
            "hf: the Trainer's own `--optim`.",
            "choices": list(OPTIMIZERS),
        },
    )
    weight_decay: float = field(
        default=5e-4, metadata={"help": "Weight decay (5e-4 as the original LA-Transformer code)."}
    )
    decay_biases_and_norms: bool = field(
        default=False,
        metadata={"help": "adamw: decay biases and norm weights too (one group, as a plain torch.optim.AdamW)."},
    )
    max_grad_norm: float = field(
        default=0.0,
        metadata={
            "help": "Gradient clipping norm; 0 (the default, as the original LA-Transformer code) clips nothing."
        },
    )
    lr_scheduler_type: str = field(
        default="auto",
        metadata={
            "help": "A transformers scheduler name; 'one_cycle': torch's OneCycleLR (max lr = --learning_rate, "
            "pct_start = the --warmup_steps share, torch's other defaults); or 'auto': constant with blockwise "
            "unfreezing (its step decay is the schedule), linear otherwise."
        },
    )
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep the dataset's columns: the image transforms read the `image` column."}
    )
    label_smoothing: float = field(
        default=0.0,
        metadata={"help": "Label smoothing of the per-row cross-entropies (--label_smoothing_factor is the same)."},
    )
    triplet_loss_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of a batch-hard triplet loss on the embeddings (0: off). Batches are then P x K."},
    )
    triplet_margin: float = field(default=0.3, metadata={"help": "Margin of the batch-hard triplet loss."})
    samples_per_identity: int = field(
        default=4, metadata={"help": "K of the P x K identity-balanced batches used with the triplet loss."}
    )
    eval_flip: bool = field(
        default=False, metadata={"help": "Evaluate with flip test-time augmentation (image + mirror image)."}
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Train into an --output_dir that already holds a model or checkpoints, replacing them (the flag "
            "transformers 4 had). Without it, or --resume_from_checkpoint, such a folder is refused."
        },
    )
    auto_lr_scheduler: bool = field(default=False, init=False, repr=False)
    one_cycle_lr_scheduler: bool = field(default=False, init=False, repr=False)

    def __post_init__(self):
        if self.label_smoothing_factor:
            if self.label_smoothing and self.label_smoothing != self.label_smoothing_factor:
                raise ValueError(
                    f"label_smoothing={self.label_smoothing} and label_smoothing_factor={self.label_smoothing_factor} "
                    "disagree: they are the same option (give one)."
                )
            self.label_smoothing = self.label_smoothing_factor
        # One value under both names (to_dict and model cards show it once, consistently).
        self.label_smoothing_factor = self.label_smoothing
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}.")
        if self.triplet_loss_weight < 0 or self.label_smoothing < 0 or self.label_smoothing >= 1:
            raise ValueError(
                "triplet_loss_weight must be >= 0 and label_smoothing in [0, 1), got "
                f"{self.triplet_loss_weight} and {self.label_smoothing}."
            )
        if self.samples_per_identity < 1:
            raise ValueError(f"samples_per_identity must be >= 1, got {self.samples_per_identity}.")
        requested = getattr(self.lr_scheduler_type, "value", self.lr_scheduler_type)
        self.auto_lr_scheduler = requested == AUTO_SCHEDULER
        self.one_cycle_lr_scheduler = requested == ONE_CYCLE
        if self.auto_lr_scheduler or self.one_cycle_lr_scheduler:
            # TrainingArguments accepts only its own scheduler names; `resolve_lr_scheduler` decides "auto" when the
            # trainer is built, and the trainer builds the one-cycle schedule itself.
            self.lr_scheduler_type = SchedulerType.LINEAR
        super().__post_init__()
        if self.one_cycle_lr_scheduler:
            self.lr_scheduler_type = ONE_CYCLE  # what runs, as saved arguments and model cards show it

    def one_cycle_pct_start(self, num_training_steps: int) -> float:
        """`OneCycleLR`'s `pct_start` for `num_training_steps`: the warm-up share (`warmup_steps`, a share below 1)."""
        if self.warmup_steps < 1:
            return float(self.warmup_steps)
        return min(1.0, self.warmup_steps / max(1, num_training_steps))


def resolve_lr_scheduler(args: LATransformerTrainingArguments, blockwise: bool) -> None:
    """
    The one decision of `lr_scheduler_type="auto"` (see [`LATransformerTrainingArguments`]), made on `args` in place:
    constant with blockwise unfreezing (its step decay is the schedule), linear otherwise. Other schedules stay.
    """
    if args.auto_lr_scheduler:
        args.lr_scheduler_type = SchedulerType.CONSTANT if blockwise else SchedulerType.LINEAR
        logger.info("lr_scheduler_type auto -> %s", args.lr_scheduler_type.value)


@dataclass
class ModelArguments:
    """Which setup and which backbone to train, and the blockwise fine-tuning options."""

    setup: str | None = field(
        default=None,
        metadata={
            "help": "A shipped setup (baseline, improvement1, improvement2, small, tiny) or a folder with config.json, "
            "preprocessor_config.json and training_args.json. Its training_args.json gives the defaults of the "
            "training flags (batch size, epochs, learning rate, unfreezing); flags on the command line win. "
            "Default: tiny (from scratch); with a pretrained --backbone, small (the pretrained recipe) at a re-ID "
            "crop that the backbone's patch divides (256x128, 252x126 at patch 14)."
        },
    )
    backbone: str | None = field(
        default=None,
        metadata={
            "help": "The backbone to start from: a ViT, DeiT or DINOv2 on the Hub (google/vit-base-patch16-224) or "
            "a saved folder, or 'random' to train from scratch with the setup's architecture (the patch must divide "
            "the setup's image size). Default: the setup's backbone."
        },
    )
    blockwise_unfreeze: bool | None = field(
        default=None,
        metadata={
            "help": "Blockwise fine-tuning (the paper's Algorithm 1). Default: on for a pretrained backbone, off "
            "for --backbone random (freezing random blocks makes no sense)."
        },
    )
    unfreeze_schedule: str = field(
        default="algorithm1",
        metadata={
            "help": "algorithm1: the paper's Algorithm 1 (epoch 0 trains the top block; the rate decays at each "
            "unfreezing until every block trains). original: the original code's notebook (epoch 0 trains the top "
            "two blocks; the rate decays every t epochs, also after; the embeddings are never frozen).",
            "choices": list(UNFREEZE_SCHEDULES),
        },
    )
    unfreeze_every_epochs: int = field(
        default=2, metadata={"help": "t of Algorithm 1: unfreeze a block every t epochs."}
    )
    lr_decay: float = field(default=0.8, metadata={"help": "Learning-rate factor applied at each unfreezing."})
    train_final_norm: bool = field(
        default=True, metadata={"help": "The encoder's final LayerNorm trains with the heads from the start."}
    )
    unfreeze_embeddings_with_first_block: bool = field(
        default=True, metadata={"help": "The patch/position embeddings and CLS token unfreeze with the lowest block."}
    )
    license: str = field(
        default=DEFAULT_LICENSE,
        metadata={"help": "The license of the trained weights, as the model card states it (a Hub license id)."},
    )


@dataclass
class DataArguments:
    """The training data (several sets are merged with disjoint labels) and the evaluation split."""

    dataset: list[str] = field(
        default_factory=list,
        metadata={
            "help": f"{', '.join(REID_DATASETS)}; several are merged with disjoint labels "
            "(e.g. --dataset market1501 course). Default: synthetic (generated, no download)."
        },
    )
    data_dir: list[str] = field(
        default_factory=list,
        metadata={
            "help": "One folder per --dataset, in the same order. synthetic may leave it out (it is generated "
            "under the datasets cache)."
        },
    )
    eval_on: str | None = field(
        default=None,
        metadata={"help": "The --dataset whose query/gallery splits evaluate the model. Default: the last one."},
    )
    synthetic_num_ids: int = field(
        default=100, metadata={"help": "synthetic: identities (half train, half query/gallery)."}
    )
    synthetic_num_cameras: int = field(default=4, metadata={"help": "synthetic: cameras."})
    synthetic_images_per_camera: int = field(default=4, metadata={"help": "synthetic: images per identity and camera."})
    synthetic_seed: int = field(default=0, metadata={"help": "synthetic: appearance seed."})
    course_num_train_ids: int = field(default=62, metadata={"help": "course: identities in the train split."})
    course_num_val_ids: int = field(
        default=12,
        metadata={
            "help": "course: validation identities (its query/gallery splits). The paper's Improvement1 trained on "
            "them too: --course_num_train_ids 74 --course_num_val_ids 0 --eval_on market1501 gives its 825 classes."
        },
    )
    # Without a setup value: the original code's augmentation, horizontal flips only.
    hflip_p: float = field(
        default=0.5, metadata={"help": "Horizontal flip probability (default: the setup's, else 0.5)."}
    )
    vflip_p: float = field(default=0.0, metadata={"help": "Vertical flip probability (default: the setup's, else 0)."})
    color_jitter_p: float = field(
        default=0.0, metadata={"help": "Colour jitter probability (default: the setup's, else 0)."}
    )
    erasing_p: float = field(
        default=0.0, metadata={"help": "Random erasing probability (default: the setup's, else 0)."}
    )
    decode_once: bool = field(
        default=False,
        metadata={
            "help": "Decode and resize every training image once into memory (uint8, height x width x 3 bytes each), "
            "then only augment at each step; default: the setup's (on for tiny)."
        },
    )

    @property
    def dataset_names(self) -> list[str]:
        """The `--dataset` names, in order; `["synthetic"]` when none is given."""
        return list(self.dataset) or ["synthetic"]

    @property
    def eval_dataset(self) -> str:
        """The `--dataset` whose query/gallery splits evaluate: `--eval_on`, else the last one."""
        return self.eval_on or self.dataset_names[-1]


class TrainArguments(NamedTuple):
    """Everything a training run is built from: the three argument dataclasses and the loaded `--setup`."""

    model: ModelArguments
    data: DataArguments
    training: LATransformerTrainingArguments
    setup: tuple[LATransformerConfig, Any, dict[str, Any]]  # (config, image processor, training_args dict)


ARGUMENT_CLASSES = (ModelArguments, DataArguments, LATransformerTrainingArguments)


def build_parser(prog: str | None = None) -> HfArgumentParser:
    """
    The parser of [`parse_arguments`]: [`ModelArguments`], [`DataArguments`] and [`LATransformerTrainingArguments`];
    `prog` names the command in usage lines (default: the script's name).
    """
    return HfArgumentParser(ARGUMENT_CLASSES, prog=prog)


def setup_defaults(setup_training_args: Mapping[str, Any]) -> dict[str, Any]:
    """
    Argument defaults from a setup's `training_args.json`: known arguments are taken as they are, `warmup_ratio`
    becomes `warmup_steps` (a fraction means a ratio) and a null backbone means `random`.
    Notes for people (`source`, ...) are skipped.
    """
    known = {f.name for cls in ARGUMENT_CLASSES for f in fields(cls) if f.init}
    defaults: dict[str, Any] = {}
    for key, value in setup_training_args.items():
        if key in SETUP_NOTES or value is None and key != "backbone":
            continue
        if key == "backbone":
            defaults["backbone"] = value or RANDOM_BACKBONE
        elif key == "warmup_ratio":
            defaults["warmup_steps"] = float(value)
        elif key in known:
            defaults[key] = value
        else:
            logger.warning("ignoring %r of the setup's training_args.json: no such training argument", key)
    return defaults


def run_defaults(setup_training_args: Mapping[str, Any]) -> dict[str, Any]:
    """
    The defaults of a training run: progress bars on (the Trainer would otherwise turn them off whenever the
    transformers logger is quieter than WARNING, as under `lareid`), a log every 10 steps, on a CPU `--bf16` only
    where bf16 pays; then the setup's ([`setup_defaults`]).
    """
    defaults: dict[str, Any] = {"logging_steps": 10, "disable_tqdm": False}
    if not torch.cuda.is_available():
        # bf16 autocast on a CPU needs use_cpu; it pays only with AVX-512 bf16 (it is slower than fp32 without).
        defaults.update(use_cpu=True, bf16=bf16_pays("cpu"))
    defaults.update(setup_defaults(setup_training_args))
    return defaults


def _with_defaults(parse: Callable[[dict[str, Any]], tuple], setup: tuple) -> TrainArguments:
    """`parse(defaults)` with the [`run_defaults`] of `setup`, as a [`TrainArguments`]."""
    defaults = run_defaults(setup[2])
    model_args, data_args, training_args = parse(defaults)
    if uses_blockwise_unfreezing(model_args) and "lr_scheduler_type" in defaults:
        # A setup's schedule is for its own run: with blockwise unfreezing "auto" (the step decay) is the default.
        del defaults["lr_scheduler_type"]
        model_args, data_args, training_args = parse(defaults)
    return TrainArguments(model_args, data_args, training_args, setup)


FROM_SCRATCH_SETUP = "tiny"
PRETRAINED_SETUP = "small"


def load_run_setup(setup: str | None, backbone: str | None) -> tuple[str, tuple]:
    """
    `(setup name, loaded setup)` of a run: `setup` when given; else `tiny` without a backbone or with `random`, and
    for a pretrained `backbone` the `small` recipe at a re-ID crop its patch divides (`reid_crop_size`: 256x128 at
    patch 16, 252x126 at patch 14), its config and image processor resized to it, normalising with the backbone's own
    mean/std where its folder or Hub repository has a `preprocessor_config.json`.
    """
    if setup is not None:
        return setup, load_setup(setup)
    if backbone in (None, RANDOM_BACKBONE):
        return FROM_SCRATCH_SETUP, load_setup(FROM_SCRATCH_SETUP)
    config, image_processor, training_args = load_setup(PRETRAINED_SETUP)
    try:
        patch_size = PreTrainedConfig.get_config_dict(backbone)[0].get("patch_size")
    except OSError:
        patch_size = None  # build_model says why the backbone cannot be loaded
    processor_fields = image_processor.to_dict()
    if patch_size is not None:
        height, width = reid_crop_size(patch_size)
        config.backbone_config.image_size = [height, width]
        config.backbone_config.patch_size = patch_size
        processor_fields["size"] = {"height": height, "width": width}
    try:
        normalisation = ImageProcessingMixin.get_image_processor_dict(backbone)[0]
    except OSError:
        normalisation = {}  # no preprocessor_config.json: ImageNet's mean/std, the setup's
    for name in ("image_mean", "image_std"):
        if normalisation.get(name) is not None:
            processor_fields[name] = list(normalisation[name])
    image_processor = type(image_processor).from_dict(processor_fields)
    return PRETRAINED_SETUP, (config, image_processor, training_args)


def parse_arguments(argv: Sequence[str] | None = None, prog: str | None = None) -> TrainArguments:
    """
    Parses `argv` (default `sys.argv[1:]`) into a [`TrainArguments`] `(model, data, training, setup)`, where `setup`
    is `(config, image_processor, training_args dict)` of `--setup`; `prog` names the command in usage errors.
    `--output_dir` is required (a usage error, exit 2, without it).

    The defaults are the [`run_defaults`] (the setup's training_args.json among them); flags on the command line win.
    With blockwise unfreezing the learning-rate schedule is "auto" (constant) unless `--lr_scheduler_type` is given.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(arg.split("=", 1)[0] in ("--output_dir", "--output-dir") for arg in argv):
        # TrainingArguments would default to ./trainer_output; a run without a named folder is a usage error.
        build_parser(prog).error("the following arguments are required: --output_dir")
    pre_parser = argparse.ArgumentParser(add_help=False)
    pre_parser.add_argument("--setup", default=ModelArguments.setup)
    pre_parser.add_argument("--backbone", default=ModelArguments.backbone)
    known = pre_parser.parse_known_args(argv)[0]
    name, setup = load_run_setup(known.setup, known.backbone)

    def parse(defaults: dict[str, Any]) -> tuple:
        parser = build_parser(prog)
        parser.set_defaults(**defaults, setup=name)
        *parsed, unknown = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
        if unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")  # exit 2, as argparse does
        return tuple(parsed)

    return _with_defaults(parse, setup)


def build_arguments(values: Mapping[str, Any], setup: tuple | None = None) -> TrainArguments:
    """
    The [`TrainArguments`] that [`parse_arguments`] gives for the flags `values` (argument names to typed values,
    e.g. `{"output_dir": "out", "num_train_epochs": 2}`), with the same defaults. `setup` is `values["setup"]`
    already loaded (loaded here when not given).
    """
    name = values.get("setup")
    if setup is None:
        name, setup = load_run_setup(name, values.get("backbone"))
    values = {**values, "setup": name}
    return _with_defaults(lambda defaults: build_parser().parse_dict({**defaults, **values}), setup)


def uses_blockwise_unfreezing(model_args: ModelArguments) -> bool:
    """`--blockwise_unfreeze` when given; else on for a pretrained backbone, off for `--backbone random`."""
    if model_args.blockwise_unfreeze is not None:
        return model_args.blockwise_unfreeze
    return model_args.backbone != RANDOM_BACKBONE


__all__ = [
    "DataArguments",
    "LATransformerTrainingArguments",
    "ModelArguments",
    "TrainArguments",
    "build_arguments",
    "build_parser",
    "parse_arguments",
    "resolve_lr_scheduler",
    "run_defaults",
    "setup_defaults",
    "uses_blockwise_unfreezing",
]
