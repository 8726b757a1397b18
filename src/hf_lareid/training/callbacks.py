"""Training callbacks: blockwise fine-tuning (Algorithm 1 or the original code's schedule) and a progress bar."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from ..backbones import BackboneGroups
from ..utils.errors import InvalidInputError

logger = logging.getLogger(__name__)

LOG_KEY = "trainable_blocks"
UNFREEZE_SCHEDULES = ("algorithm1", "original")
"""`"algorithm1"`: the paper's pseudo-code; `"original"`: what the original public code's training notebook runs."""


@dataclass(frozen=True)
class UnfreezeStage:
    """
    What trains during one epoch of blockwise fine-tuning.

    Attributes:
        epoch: 0-based epoch index.
        num_trainable_blocks: how many of the topmost encoder blocks train in this epoch.
        lr_factor: the initial learning rate is multiplied by this (`lr_decay ** unfreezings so far`).
        unfrozen_block: index of the (lowest) block unfrozen at the start of this epoch, or `None`.
    """

    epoch: int
    num_trainable_blocks: int
    lr_factor: float
    unfrozen_block: int | None


def blockwise_unfreeze_schedule(
    num_blocks: int, num_epochs: int, t: int = 2, lr_decay: float = 0.8
) -> list[UnfreezeStage]:
    """
    The paper's Algorithm 1, epoch by epoch: at epoch `i` (0-based), if `i mod t == 0` and frozen blocks remain,
    the topmost frozen block is unfrozen and the learning rate is multiplied by `lr_decay`.

    So epoch 0 already trains the top block, at `lr * lr_decay`.

    Example:

    ```python
    >>> [(s.num_trainable_blocks, round(s.lr_factor, 3)) for s in blockwise_unfreeze_schedule(4, 5, t=2)]
    [(1, 0.8), (1, 0.8), (2, 0.64), (2, 0.64), (3, 0.512)]
    ```
    """
    _check_schedule_options(t, lr_decay)
    schedule, frozen, lr_factor = [], num_blocks, 1.0
    for epoch in range(num_epochs):
        unfrozen_block = None
        if epoch % t == 0 and frozen > 0:
            frozen -= 1
            unfrozen_block = frozen  # 0-based index of the topmost block that was still frozen
            lr_factor *= lr_decay
        schedule.append(UnfreezeStage(epoch, num_blocks - frozen, lr_factor, unfrozen_block))
    return schedule


def original_unfreeze_schedule(
    num_blocks: int, num_epochs: int, t: int = 2, lr_decay: float = 0.8
) -> list[UnfreezeStage]:
    """
    The original LA-Transformer code's schedule (its training notebook), epoch by epoch.

    At epoch `i` (0-based), if `i mod t == 0`, the unfreezing counter `k` grows by one, `unfreeze_blocks(model, k)`
    unfreezes `blocks[num_blocks - 1 - k:]` (so `k + 1` blocks: two at epoch 0) and the learning rate is multiplied
    by `lr_decay`, at every such epoch, also once every block trains (no `b > 0` stop). The patch/position embeddings
    and the CLS token are never frozen.

    Example:

    ```python
    >>> [(s.num_trainable_blocks, round(s.lr_factor, 3)) for s in original_unfreeze_schedule(4, 7, t=2)]
    [(2, 0.8), (2, 0.8), (3, 0.64), (3, 0.64), (4, 0.512), (4, 0.512), (4, 0.41)]
    ```
    """
    _check_schedule_options(t, lr_decay)
    schedule, unfreezings, trainable = [], 0, 0
    for epoch in range(num_epochs):
        unfrozen_block = None
        if epoch % t == 0:
            unfreezings += 1
            now_trainable = min(num_blocks, unfreezings + 1)
            if now_trainable > trainable:
                unfrozen_block = num_blocks - now_trainable
            trainable = now_trainable
        schedule.append(UnfreezeStage(epoch, trainable, lr_decay**unfreezings, unfrozen_block))
    return schedule


def _check_schedule_options(t: int, lr_decay: float) -> None:
    if t < 1:
        raise InvalidInputError(f"t (unfreeze every t epochs) must be >= 1, got {t}.")
    if not 0.0 < lr_decay <= 1.0:
        raise InvalidInputError(f"lr_decay must be in (0, 1], got {lr_decay}.")


def unfreeze_schedule(
    name: str, num_blocks: int, num_epochs: int, t: int = 2, lr_decay: float = 0.8
) -> list[UnfreezeStage]:
    """The schedule `name` (one of `UNFREEZE_SCHEDULES`): [`blockwise_unfreeze_schedule`] or [`original_unfreeze_schedule`]."""
    if name == "algorithm1":
        return blockwise_unfreeze_schedule(num_blocks, num_epochs, t, lr_decay)
    if name == "original":
        return original_unfreeze_schedule(num_blocks, num_epochs, t, lr_decay)
    raise InvalidInputError(f"unfreeze schedule must be one of {UNFREEZE_SCHEDULES}, got {name!r}.")


def format_unfreeze_schedule(schedule: list[UnfreezeStage], num_blocks: int) -> str:
    """A plain-text table of a schedule (one line per epoch), for logs and model cards."""
    lines = ["epoch | trainable blocks | unfrozen now | lr factor"]
    for stage in schedule:
        first = num_blocks - stage.num_trainable_blocks
        blocks = f"{first}-{num_blocks - 1}" if stage.num_trainable_blocks else "none"
        unfrozen = "-" if stage.unfrozen_block is None else str(stage.unfrozen_block)
        lines.append(f"{stage.epoch:5d} | {blocks:>16} | {unfrozen:>12} | {stage.lr_factor:.4f}")
    return "\n".join(lines)


class BlockwiseUnfreezeCallback(TrainerCallback):
    """
    Blockwise fine-tuning of the ViT encoder (Sharma et al. 2021, Algorithm 1, or the original code's schedule).

    Before training all encoder blocks are frozen and the row heads train. With `schedule="algorithm1"` (default),
    at epoch `i` (0-based), if `i mod t == 0` and frozen blocks remain, the topmost frozen block is unfrozen and the
    learning rate is multiplied by `lr_decay` (see [`blockwise_unfreeze_schedule`]): epoch 0 trains the top block at
    `lr * lr_decay`. With `schedule="original"` (the original code's notebook, [`original_unfreeze_schedule`]) epoch
    0 trains the top two blocks, one more unfreezes every `t` epochs, the rate decays at every `t`-th epoch even after
    all blocks train, and the embeddings are never frozen.

    - The state is derived from `state.epoch` at every epoch start (not from counted events), so
      `resume_from_checkpoint` restores exactly the trainable blocks and learning rate of the interrupted run.
    - The learning-rate change persists: it is written to the optimizer's param groups and to the scheduler's
      `base_lrs` (which the scheduler multiplies by its schedule factor at every step, and which are saved in
      checkpoints), and to its last learning rate, which the Trainer logs. A decaying schedule would stack on the
      step decay, so [`LATransformerTrainer`] uses a constant schedule when this callback is on and
      `lr_scheduler_type` is left at `"auto"`.
    - Freezing only flips `requires_grad`: every parameter stays in the optimizer (Adam skips parameters whose
      gradient is `None`), so the optimizer state always has the same shape and resumes; under DDP the model is
      wrapped before the first epoch starts, so every block is registered for gradient synchronisation.
    - Frozen blocks cost no backward work: with the embeddings and the lower blocks frozen, autograd records
      nothing below the lowest trainable block.

    Args:
        t: unfreeze one block every `t` epochs.
        lr_decay: learning-rate factor applied at each unfreezing.
        train_final_norm: the encoder's final LayerNorm trains with the heads from the start (else it stays frozen).
        unfreeze_embeddings_with_first_block: the patch/position embeddings and CLS token unfreeze together with
            the lowest block (else they stay frozen). Ignored by `schedule="original"`, which never freezes them.
        schedule: `"algorithm1"` or `"original"` (see above).

    Example:

    ```python
    >>> callback = BlockwiseUnfreezeCallback(t=2, lr_decay=0.8)  # LATransformerTrainer(..., callbacks=[callback])
    >>> callback.t, callback.lr_decay
    (2, 0.8)
    ```
    """

    def __init__(
        self,
        t: int = 2,
        lr_decay: float = 0.8,
        train_final_norm: bool = True,
        unfreeze_embeddings_with_first_block: bool = True,
        schedule: str = "algorithm1",
    ):
        unfreeze_schedule(schedule, 1, 1, t, lr_decay)  # validates the name, t and lr_decay
        self.t = t
        self.lr_decay = lr_decay
        self.train_final_norm = train_final_norm
        self.unfreeze_embeddings_with_first_block = unfreeze_embeddings_with_first_block
        self.schedule_name = schedule

    def stage(self, epoch: int, num_blocks: int) -> UnfreezeStage:
        """The stage of `epoch` (0-based) for an encoder of `num_blocks` blocks."""
        return self.schedule(num_blocks, epoch + 1)[-1]

    def schedule(self, num_blocks: int, num_epochs: int) -> list[UnfreezeStage]:
        """The whole schedule, one [`UnfreezeStage`] per epoch."""
        return unfreeze_schedule(self.schedule_name, num_blocks, num_epochs, self.t, self.lr_decay)

    @staticmethod
    def _groups(model: torch.nn.Module) -> BackboneGroups:
        groups = getattr(model, "backbone_groups", None)
        if groups is None:
            raise TypeError(
                f"BlockwiseUnfreezeCallback needs an LA-Transformer (its encoder at `model.vit`, grouped by "
                f"`model.backbone_groups()`), got "
                f"{type(model).__name__}."
            )
        return groups()

    def apply(self, epoch: int, model: torch.nn.Module, optimizer=None, lr_scheduler=None) -> UnfreezeStage:
        """
        Sets `requires_grad` and the learning rate for `epoch` (0-based); idempotent.

        The learning rate of each param group becomes `initial_lr * stage.lr_factor` times the scheduler's current
        factor, in the group and in `lr_scheduler.base_lrs`.
        """
        groups = self._groups(model)
        layers = groups.blocks
        num_blocks = len(layers)
        stage = self.stage(epoch, num_blocks)
        first_trainable = num_blocks - stage.num_trainable_blocks
        for index, block in enumerate(layers):
            block.requires_grad_(index >= first_trainable)
        embeddings_train = self.schedule_name == "original" or (
            self.unfreeze_embeddings_with_first_block and first_trainable == 0
        )
        groups.stem.requires_grad_(embeddings_train)
        groups.final_norm.requires_grad_(self.train_final_norm)
        if optimizer is not None and lr_scheduler is not None:
            self._set_learning_rate(stage.lr_factor, optimizer, lr_scheduler)
        return stage

    @staticmethod
    def _set_learning_rate(lr_factor: float, optimizer, lr_scheduler) -> None:
        base_lrs = getattr(lr_scheduler, "base_lrs", None)
        if base_lrs is None:
            raise InvalidInputError(
                f"BlockwiseUnfreezeCallback scales the scheduler's base_lrs; {type(lr_scheduler).__name__} has none. "
                "Use a LambdaLR-based lr_scheduler_type such as 'constant'."
            )
        for index, group in enumerate(optimizer.param_groups):
            target = group.get("initial_lr", base_lrs[index]) * lr_factor
            if base_lrs[index] > 0:
                group["lr"] *= target / base_lrs[index]
            else:
                group["lr"] = target
            base_lrs[index] = target
        if hasattr(lr_scheduler, "_last_lr"):
            # What the Trainer logs as `learning_rate` (get_last_lr()); else a stage's first step logs the old rate.
            lr_scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]

    def _on_stage(self, args: TrainingArguments, state: TrainerState, model, optimizer, lr_scheduler) -> None:
        # state.epoch is a float (epoch + fraction of steps); at an epoch start it is the epoch index, mid-epoch
        # after a resume it is e.g. 1.5 -> epoch 1.
        epoch = int(math.floor((state.epoch or 0.0) + 1e-6))
        stage = self.apply(epoch, model, optimizer, lr_scheduler)
        num_blocks = len(self._groups(model).blocks)
        last = next((entry for entry in reversed(state.log_history) if LOG_KEY in entry), None)
        if last is None or last[LOG_KEY] != stage.num_trainable_blocks:
            lr = optimizer.param_groups[0]["lr"] if optimizer is not None else float("nan")
            logger.info(
                "epoch %d: %d of %d encoder blocks trainable, learning rate %.3g (factor %.4f)",
                epoch,
                stage.num_trainable_blocks,
                num_blocks,
                lr,
                stage.lr_factor,
            )
            # Kept in the log history (saved with checkpoints) so training curves can mark the unfreezing epochs.
            state.log_history.append(
                {
                    "epoch": float(epoch),
                    "step": state.global_step,
                    LOG_KEY: stage.num_trainable_blocks,
                    "lr_factor": stage.lr_factor,
                }
            )

    def on_train_begin(
        self, args, state, control, model=None, optimizer=None, lr_scheduler=None, **kwargs
    ) -> TrainerControl:
        self._on_stage(args, state, model, optimizer, lr_scheduler)
        return control

    def on_epoch_begin(
        self, args, state, control, model=None, optimizer=None, lr_scheduler=None, **kwargs
    ) -> TrainerControl:
        self._on_stage(args, state, model, optimizer, lr_scheduler)
        return control

    def on_train_end(self, args, state, control, model=None, **kwargs) -> TrainerControl:
        # Leave a fully trainable model behind (for a later fine-tuning or an export), as it was before training.
        groups = self._groups(model)
        for group in (groups.stem, groups.blocks, groups.final_norm):
            group.requires_grad_(True)
        return control


def unfreeze_epochs(log_history: list[dict]) -> list[float]:
    """Epochs where [`BlockwiseUnfreezeCallback`] logged a change of the trainable blocks (a Trainer's
    `state.log_history`), e.g. to mark them on the training curves."""
    return [entry["epoch"] for entry in log_history if LOG_KEY in entry and "epoch" in entry]


class StageProgressCallback(TrainerCallback):
    """
    One progress bar over the training steps, titled `description`, showing the latest loss, Rank-1 and mAP (for
    runs that turn the Trainer's own bars and printed logs off, as `lareid demo` does for each of its stages).
    """

    def __init__(self, description: str):
        self.description = description
        self.bar: tqdm | None = None
        self.latest: dict[str, str] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        self.bar = tqdm(total=state.max_steps, desc=self.description, unit="step")

    def on_step_end(self, args, state, control, **kwargs):
        self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key, label in (("loss", "loss"), ("eval_rank1", "Rank-1"), ("eval_mAP", "mAP")):
            if logs and key in logs:
                self.latest[label] = f"{logs[key]:.3f}" if key == "loss" else f"{100 * logs[key]:.1f}%"
        if self.bar is not None:
            self.bar.set_postfix(self.latest)

    def on_train_end(self, args, state, control, **kwargs):
        self.bar.close()


__all__ = [
    "UNFREEZE_SCHEDULES",
    "BlockwiseUnfreezeCallback",
    "StageProgressCallback",
    "UnfreezeStage",
    "blockwise_unfreeze_schedule",
    "format_unfreeze_schedule",
    "original_unfreeze_schedule",
    "unfreeze_epochs",
    "unfreeze_schedule",
]
