"""Says when training is not learning: the cross-entropy still near chance, or the triplet loss stuck at its margin.

[`LATransformerTrainer`] adds a [`LearningCheckCallback`] to every run and feeds it each training step's losses
([`LearningCheckCallback.record`]); its logs carry `ce_chance_fraction`, the mean per-row cross-entropy as a fraction
of chance, `ln(num_labels)` (1.0: the row classifiers predict no better than uniform). At the end of every epoch the
callback keeps the epoch's means (`epochs`, logged at DEBUG level) and warns once, in one line, when

- after an epoch the mean per-row cross-entropy is still above `CHANCE_FRACTION_LIMIT` (0.9) of chance, or
- the triplet loss stayed within `TRIPLET_MARGIN_BAND` (2 %) of its margin for a whole epoch: the embeddings it
  compares do not tell people apart (with every distance equal, the batch-hard loss is exactly the margin).

Example:

```python
>>> check = LearningCheckCallback()
>>> check.record(ce_per_row=4.5, num_labels=100)  # one step: 4.5 nats per row, ln(100) = 4.61 -> 0.98 of chance
>>> check.epoch_summary()
{'ce_per_row': 4.5, 'ce_chance_fraction': 0.9772}
```
"""

from __future__ import annotations

import logging
import math
from typing import Any

from transformers import TrainerCallback

logger = logging.getLogger(__name__)

CHANCE_FRACTION_LIMIT = 0.9
"""Warn when an epoch's mean per-row cross-entropy is above this fraction of `ln(num_labels)`."""
TRIPLET_MARGIN_BAND = 0.02
"""Warn when every step of an epoch has its triplet loss within this fraction of the margin."""
LOG_KEY = "ce_chance_fraction"


class LearningCheckCallback(TrainerCallback):
    """
    Watches the per-step losses of an epoch (see the module docstring); warns at most once per run.

    Attributes:
        warning (`str` or `None`): the warning given, if any.
        epochs (`list[dict]`): one summary per finished epoch ([`epoch_summary`] plus `"epoch"`, 1-based): the loss
            trajectory of the run.
    """

    def __init__(self) -> None:
        self.warning: str | None = None
        self.epochs: list[dict[str, float]] = []
        self._reset()

    def _reset(self) -> None:
        self._ce_per_row: list[float] = []
        self._fractions: list[float] = []
        self._triplet_losses: list[float] = []
        self._triplet_at_margin = 0

    def record(
        self, ce_per_row: float, num_labels: int, triplet_loss: float | None = None, margin: float | None = None
    ) -> None:
        """
        One training step: `ce_per_row` is the mean per-row cross-entropy (the summed loss over the rows divided by
        their number), `num_labels` the classes of the row classifiers; `triplet_loss` and its `margin` when the
        triplet loss is on.
        """
        self._ce_per_row.append(ce_per_row)
        if num_labels >= 2:
            self._fractions.append(ce_per_row / math.log(num_labels))
        if triplet_loss is not None and margin:
            self._triplet_losses.append(triplet_loss)
            self._triplet_at_margin += abs(triplet_loss - margin) <= TRIPLET_MARGIN_BAND * margin

    def epoch_summary(self) -> dict[str, float]:
        """
        Means over the epoch so far: `ce_per_row` (nats), `ce_chance_fraction` (over `ln(num_labels)`) and
        `triplet_loss` when it is on; empty before any step.
        """
        summary = {}
        for name, values in (
            ("ce_per_row", self._ce_per_row),
            (LOG_KEY, self._fractions),
            ("triplet_loss", self._triplet_losses),
        ):
            if values:
                summary[name] = round(sum(values) / len(values), 4)
        return summary

    def check(self, epoch: int) -> str | None:
        """The warning for the epoch `epoch` (1-based) just recorded, or `None`."""
        summary = self.epoch_summary()
        if summary.get(LOG_KEY, 0.0) > CHANCE_FRACTION_LIMIT:
            return (
                f"little learning so far: after epoch {epoch} the mean per-row cross-entropy is still "
                f"{summary[LOG_KEY]:.2f} of chance (ln num_labels); if later epochs stay there, check the learning "
                "rate, the schedule, the labels and the augmentations."
            )
        if self._triplet_losses and self._triplet_at_margin == len(self._triplet_losses):
            return (
                f"not learning: the triplet loss stayed within {TRIPLET_MARGIN_BAND:.0%} of its margin for all of "
                f"epoch {epoch}: the features it compares do not separate people (collapsed embeddings)."
            )
        return None

    def on_epoch_end(self, args, state, control, **kwargs: Any):
        epoch = max(1, round(state.epoch or 0))
        summary = self.epoch_summary()
        if summary:
            self.epochs.append({"epoch": epoch, **summary})
        if LOG_KEY in summary:
            logger.debug("epoch %d: mean per-row cross-entropy %.3f of chance", epoch, summary[LOG_KEY])
        warning = self.check(epoch)
        if warning and self.warning is None:
            self.warning = warning
            if state.is_world_process_zero:
                logger.warning(warning)
        self._reset()
        return control


__all__ = ["CHANCE_FRACTION_LIMIT", "TRIPLET_MARGIN_BAND", "LearningCheckCallback"]
