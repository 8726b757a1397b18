"""What `ReIDEncoder.encode` accepts, turned into batches of columns and preprocessed pixels."""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import islice
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..utils.errors import InvalidInputError
from ..utils.images import load_rgb


def is_one_image(data: Any) -> bool:
    """A single PIL image, path, URL or `(height, width[, channels])` array, rather than a collection of them."""
    return isinstance(data, (Image.Image, str, os.PathLike)) or isinstance(data, np.ndarray) and data.ndim <= 3


def is_dataset(data: Any) -> bool:
    """A `datasets.Dataset` (told by its `iter` and `column_names`, without importing `datasets`)."""
    return hasattr(data, "iter") and hasattr(data, "column_names")


def iter_batches(data: Any, batch_size: int) -> Iterator[dict[str, Any]]:
    """Batches of columns from a `datasets.Dataset` (its transforms applied) or from any iterable of images/paths."""
    if is_dataset(data):
        yield from data.iter(batch_size=batch_size)
        return
    if is_one_image(data):
        data = [data]
    iterator = iter(data)
    while chunk := list(islice(iterator, batch_size)):
        paths = [str(item) if isinstance(item, (str, os.PathLike)) else "" for item in chunk]
        yield {"image": chunk, "path": paths}


def batch_to_pixels(batch: dict[str, Any], image_processor: Any) -> torch.Tensor:
    """A dict of columns (with `pixel_values`, or `image` to preprocess) -> `(batch, 3, height, width)`."""
    if "pixel_values" in batch:
        pixels = batch["pixel_values"]
        return pixels if isinstance(pixels, torch.Tensor) else torch.stack([torch.as_tensor(p) for p in pixels])
    if "image" not in batch:
        raise InvalidInputError(f"a batch needs an 'image' or 'pixel_values' column, got columns {sorted(batch)}.")
    if image_processor is None:
        raise InvalidInputError(
            "raw images need an image processor: pass image_processor=AutoImageProcessor.from_pretrained(MODEL_DIR, backend='pil')."
        )
    images = [load_rgb(image) for image in batch["image"]]
    return image_processor(images, return_tensors="pt")["pixel_values"]


def column(batch: dict[str, Any], name: str, size: int, default: Any) -> list:
    """The batch's `name` column as a list, or `size` copies of `default` where the data has none."""
    values = batch.get(name)
    return list(values) if values is not None else [default] * size


__all__ = ["batch_to_pixels", "column", "is_dataset", "is_one_image", "iter_batches"]
