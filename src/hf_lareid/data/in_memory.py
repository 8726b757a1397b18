"""A training split decoded and resized once into memory, so that each step only augments.

Reading a training image the usual way (`set_transform`) decodes the file, converts it, resizes it with the image
processor and then augments it, at every epoch. For small crops on a CPU that costs about as much as a training
step of a small ViT (`benchmarks/bench_train.py` measures both). [`InMemoryReIDDataset`] does the decoding and
resizing once, keeps the resized images as uint8 (`height * width * 3` bytes per crop) and leaves the augmentations of the [`ReIDTransform`] to every access.

Example:
    >>> from hf_lareid.data.in_memory import InMemoryReIDDataset
    >>> train = InMemoryReIDDataset(data["train"], build_train_transform(processor))  # doctest: +SKIP
    >>> train[0]["pixel_values"].shape, train[0]["label"]  # doctest: +SKIP
    (torch.Size([3, 128, 64]), 0)
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from torch.utils.data import Dataset

from ..utils.errors import InvalidInputError
from ..utils.images import load_rgb
from .transforms import ReIDTransform, augmentation_keys

__all__ = ["InMemoryReIDDataset"]

logger = logging.getLogger(__name__)

DECODE_BATCH = 256  # images per image-processor call while decoding


class InMemoryReIDDataset(Dataset):
    """The rows of a re-ID training split with their images decoded and resized once.

    Args:
        dataset (`datasets.Dataset`): a split with an ``image`` and a ``label`` column (as `load_reid_dataset` gives),
            without a transform set.
        transform (`ReIDTransform`): the training transform; its image processor resizes once, its
            `augment_pixels` runs at every access.

    Each item is ``{"pixel_values": (3, height, width) float32, "label": int}``; `labels` lists every row's label
    (what `PKSampler` reads). Memory: ``len(dataset) * 3 * height * width`` bytes. With a seeded transform each
    image's augmentation is drawn from ``(seed, epoch, its label and path)`` as in the per-step path (the Trainer calls
    `set_epoch`), so a resumed run augments as an uninterrupted one.
    """

    def __init__(self, dataset: Any, transform: ReIDTransform):
        for column in ("image", "label"):
            if column not in dataset.column_names:
                raise InvalidInputError(f"InMemoryReIDDataset needs the {column!r} column, got {dataset.column_names}.")
        self.transform = transform
        self.rescale_factor = float(transform.image_processor.rescale_factor)
        self.labels = [int(label) for label in dataset["label"]]
        # The seeds' keys as `ReIDTransform.__call__` forms them, else the row numbers.
        has_paths = "path" in dataset.column_names
        self.keys = augmentation_keys(self.labels, dataset["path"]) if has_paths else None
        start = time.perf_counter()
        rows = dataset.select_columns(["image"])
        chunks = []
        for first in range(0, len(rows), DECODE_BATCH):
            images = [load_rgb(image) for image in rows[first : first + DECODE_BATCH]["image"]]
            resized = transform.image_processor(images, do_rescale=False, do_normalize=False, return_tensors="pt")
            chunks.append(resized["pixel_values"].round().clamp_(0, 255).to(torch.uint8))
        self.images = torch.cat(chunks)  # (rows, 3, height, width) uint8
        logger.info(
            "decoded %d training images once into memory (%.0f MB) in %.1f s",
            len(self.images),
            self.images.numel() / 2**20,
            time.perf_counter() - start,
        )

    @property
    def seed(self) -> int | None:
        """The transform's augmentation seed (`None`: torch's global generator)."""
        return self.transform.seed

    def set_epoch(self, epoch: int) -> None:
        """Use `epoch`'s augmentations (a seeded transform; `TransformEpochCallback` calls this)."""
        self.transform.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        pixels = self.images[index : index + 1].float() * self.rescale_factor  # (1, 3, height, width) in [0, 1]
        seeds = None
        if self.transform.seed is not None:
            seeds = self.transform.sample_seeds([], [self.keys[index] if self.keys else str(index)])
        return {"pixel_values": self.transform.augment_pixels(pixels, seeds)[0], "label": self.labels[index]}
