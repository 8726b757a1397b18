"""Tells a seeded training transform the current epoch, so that a resumed run augments exactly as an uninterrupted one.

[`ReIDTransform`] with a `seed` draws each image's augmentation from ``(seed, epoch, path)``; the
[`LATransformerTrainer`] adds [`TransformEpochCallback`] when its training set carries such a transform
(`set_transform(build_train_transform(processor, seed=...))`).
"""

from __future__ import annotations

import math
from typing import Any

from transformers import TrainerCallback, TrainingArguments

from ..utils.errors import InvalidInputError

__all__ = ["TransformEpochCallback", "epoch_transform_of"]


def epoch_transform_of(dataset: Any) -> Any:
    """The transform set on a `datasets.Dataset` (or the dataset itself) when it has `set_epoch`, else `None`."""
    transform = (getattr(dataset, "format", None) or {}).get("format_kwargs", {}).get("transform")
    for candidate in (transform, dataset):
        if callable(getattr(candidate, "set_epoch", None)) and hasattr(candidate, "seed"):
            return candidate
    return None


class TransformEpochCallback(TrainerCallback):
    """Calls `transform.set_epoch(epoch)` at every epoch begin, also the one a resumed run starts in the middle of."""

    def __init__(self, transform: Any, args: TrainingArguments | None = None):
        persistent = args is not None and args.dataloader_persistent_workers and args.dataloader_num_workers > 0
        if persistent and transform.seed is not None:
            raise InvalidInputError(
                "a seeded training transform needs each epoch's number, which persistent DataLoader workers never "
                "see (every epoch would repeat the first one's augmentations): set dataloader_persistent_workers=False "
                "or build the transform with seed=None."
            )
        self.transform = transform

    def on_epoch_begin(self, args, state, control, **kwargs):
        # state.epoch is a float: the resumed run's fraction (1.5) or the end of the previous epoch (2.0).
        self.transform.set_epoch(math.floor(state.epoch or 0))
