"""[`LATransformerTrainingArguments`]: transformers' `TrainingArguments` with the LA-Transformer's defaults and options.

The flags of a training run (`--setup`, `--backbone`, `--dataset`, ...) and their parsing belong to the training
script, `hf_lareid.scripts.train`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from transformers import SchedulerType, TrainingArguments

from ..utils.errors import InvalidInputError

logger = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "adamw", "hf")
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
                raise InvalidInputError(
                    f"label_smoothing={self.label_smoothing} and label_smoothing_factor={self.label_smoothing_factor} "
                    "disagree: they are the same option (give one)."
                )
            self.label_smoothing = self.label_smoothing_factor
        # One value under both names (to_dict and model cards show it once, consistently).
        self.label_smoothing_factor = self.label_smoothing
        if self.optimizer not in OPTIMIZERS:
            raise InvalidInputError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}.")
        if self.triplet_loss_weight < 0 or self.label_smoothing < 0 or self.label_smoothing >= 1:
            raise InvalidInputError(
                "triplet_loss_weight must be >= 0 and label_smoothing in [0, 1), got "
                f"{self.triplet_loss_weight} and {self.label_smoothing}."
            )
        if self.samples_per_identity < 1:
            raise InvalidInputError(f"samples_per_identity must be >= 1, got {self.samples_per_identity}.")
        requested = getattr(self.lr_scheduler_type, "value", self.lr_scheduler_type)
        self.auto_lr_scheduler = requested == AUTO_SCHEDULER
        self.one_cycle_lr_scheduler = requested == ONE_CYCLE
        if self.auto_lr_scheduler or self.one_cycle_lr_scheduler:
            # TrainingArguments accepts only its own scheduler names; `resolve_lr_scheduler` decides "auto" when the
            # trainer is built, and the trainer builds the one-cycle schedule itself.
            self.lr_scheduler_type = SchedulerType.LINEAR
        try:
            super().__post_init__()
        except ValueError as error:  # transformers refusing a combination of arguments: the caller's input
            raise InvalidInputError(str(error)) from error
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


__all__ = ["LATransformerTrainingArguments", "resolve_lr_scheduler"]
