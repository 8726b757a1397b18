"""Image transforms for re-ID datasets (paper section 3.3), applied lazily with `set_transform` / `with_transform`.

Both paths resize with the model's image processor (`transformers.ViTImageProcessorPil`, PIL resampling), so training
and evaluation inputs match: evaluation is exactly the processor's output; training takes the processor's resized,
rescaled image in [0, 1], applies the augmentations (horizontal flip, vertical flip, kornia's colour jitter,
optional random erasing, each with its own probability; 0 turns it off) and normalises with the processor's mean/std
(random erasing after it). Flips and erasing are plain tensor ops on each image, drawn from the image's own generator,
so the seeded per-image augmentation of a training batch costs milliseconds, not a tenth of a training step.
Every image goes through `hf_lareid.utils.images.load_rgb` first (16-bit, float, grayscale, RGBA, CMYK and palette
images all work).

The processor must use the PIL backend: in transformers 5 `ViTImageProcessor` / `AutoImageProcessor` give the
torchvision backend by default, whose resizing differs from the PIL one the models are saved with, so any other
backend raises `ValueError` (load it with ``AutoImageProcessor.from_pretrained(path, backend="pil")``). A resample
other than bicubic (``resample=3``, the original LA-Transformer preprocessing; `ViTImageProcessorPil` defaults to
bilinear) only logs a warning, since converted or user processors may differ on purpose.

Example:
    >>> from transformers import ViTImageProcessorPil
    >>> processor = ViTImageProcessorPil(size={"height": 128, "width": 64}, resample=3)  # PIL bicubic
    >>> train = data["train"].with_transform(build_train_transform(processor))  # doctest: +SKIP
    >>> train[0]["pixel_values"].shape  # doctest: +SKIP
    torch.Size([3, 128, 64])
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from typing import Any

import kornia.augmentation as K
import torch
from PIL import Image
from torch import nn

from ..utils.errors import InvalidInputError
from ..utils.images import load_rgb

__all__ = [
    "BICUBIC",
    "ERASING_ASPECT_RATIOS",
    "PASSTHROUGH_COLUMNS",
    "ReIDTransform",
    "build_eval_transform",
    "build_train_transform",
    "check_image_processor",
    "erasing_box",
]

logger = logging.getLogger(__name__)

BICUBIC = 3
"""`PIL.Image.Resampling.BICUBIC`, the resampling of the original preprocessing and of the shipped setups."""

PASSTHROUGH_COLUMNS = ("label", "person_id", "camera_id")
"""Columns copied unchanged from the batch to the transform's output (when present)."""


def check_image_processor(image_processor: Any) -> None:
    """Check that `image_processor` resizes like the saved models: PIL backend (else `ValueError`), bicubic (else a
    warning).

    Example:
        >>> from transformers import ViTImageProcessorPil
        >>> check_image_processor(ViTImageProcessorPil(resample=3))  # PIL backend, bicubic: fine
    """
    backend = getattr(image_processor, "backend", None)
    if backend != "pil":
        raise InvalidInputError(
            f"image_processor {type(image_processor).__name__} uses the {backend or 'unknown'!r} backend, but re-ID "
            "transforms need the PIL backend so that training and evaluation resize like the saved processor. "
            'Load it with AutoImageProcessor.from_pretrained(path, backend="pil") or build '
            "ViTImageProcessorPil(size=..., resample=3)."
        )
    resample = getattr(image_processor, "resample", None)
    if resample is not None and int(resample) != BICUBIC:
        logger.warning(
            "image_processor %s resizes with resample=%s, not bicubic (resample=3) as the original LA-Transformer "
            "preprocessing and the shipped setups do; pass resample=3 unless this is deliberate.",
            type(image_processor).__name__,
            resample,
        )


def augmentation_keys(labels: Sequence[Any], paths: Sequence[str]) -> list[str]:
    """The per-image keys that seed seeded augmentations: ``"label/path"`` (paths are relative to each set's
    data_dir, so the label tells merged sets apart)."""
    return [f"{label}/{path}" for label, path in zip(labels, paths)]


ERASING_ASPECT_RATIOS = (0.3, 3.3)
"""Height/width range of the erased box (log-uniform), as in Zhong et al.'s random erasing and kornia's default."""


def erasing_box(
    size: tuple[int, int], scale: tuple[float, float], generator: torch.Generator | None = None
) -> tuple[int, int, int, int]:
    """A random-erasing box `(top, left, height, width)` inside an image of `size` (height, width): its area a
    uniform share in `scale` of the image, its aspect ratio log-uniform in `ERASING_ASPECT_RATIOS`, its place
    uniform; drawn from `generator` (`None`: torch's global generator)."""
    image_height, image_width = int(size[0]), int(size[1])
    area_share, log_ratio, row, col = torch.rand(4, generator=generator, dtype=torch.float64).tolist()
    low, high = math.log(ERASING_ASPECT_RATIOS[0]), math.log(ERASING_ASPECT_RATIOS[1])
    area = image_height * image_width * (scale[0] + (scale[1] - scale[0]) * area_share)
    ratio = math.exp(low + (high - low) * log_ratio)
    height = min(image_height, max(1, round(math.sqrt(area * ratio))))
    width = min(image_width, max(1, round(math.sqrt(area / ratio))))
    return int(row * (image_height - height + 1)), int(col * (image_width - width + 1)), height, width


class ReIDTransform:
    """Batch transform for `datasets`: ``{"image": [PIL, ...], ...}`` -> ``{"pixel_values": (B, 3, H, W), ...}``.

    Args:
        image_processor: the model's image processor (`ViTImageProcessorPil`, PIL backend, bicubic); it fixes the
            size, resampling, rescale factor, mean and std. Another backend raises `ValueError`; a resample other
            than bicubic (3) logs a warning.
        train (`bool`, *optional*, defaults to `False`): apply the augmentations below; `False` returns exactly the
            processor's output.
        hflip_p (`float`, *optional*, defaults to 0.5): probability of a horizontal flip.
        vflip_p (`float`, *optional*, defaults to 0.5): probability of a vertical flip.
        color_jitter_p (`float`, *optional*, defaults to 0.8): probability of colour jitter.
        brightness / contrast / saturation / hue (`float`, *optional*, default 0.2 / 0.2 / 0.2 / 0.0): jitter
            strengths, as in `kornia.augmentation.ColorJitter`.
        erasing_p (`float`, *optional*, defaults to 0.0): probability of random erasing (off by default); the
            erased box (`erasing_box`) gets value 0 after normalisation, i.e. the mean colour.
        erasing_scale (`tuple[float, float]`, *optional*, defaults to (0.02, 0.33)): erased area share range.
        seed (`int`, *optional*): seeds every image's augmentation by (seed, epoch, label, path), see below; `None`
            draws from torch's global generator.

    Output ``pixel_values`` is a float32 tensor of shape (batch, 3, height, width); ``label``, ``person_id`` and
    ``camera_id`` are passed through when present.

    Randomness: with `seed` (an `int`), each image's augmentation is drawn from its own generator, seeded by
    ``(seed, epoch, the image's label and path, its repeat within the batch)``; call :meth:`set_epoch` at every
    epoch (the [`LATransformerTrainer`] does). The same image in the same epoch is then augmented identically in any
    run or process, torch's global generator is left untouched (dropout draws from it alone), and a training run
    killed at any step and resumed from its checkpoint gives the weights of an uninterrupted one. Rows without a
    ``path`` column are keyed by a digest of their pixels. With ``seed=None`` (the default) augmentations draw from
    torch's global generator.
    """

    def __init__(
        self,
        image_processor: Any,
        train: bool = False,
        hflip_p: float = 0.5,
        vflip_p: float = 0.5,
        color_jitter_p: float = 0.8,
        brightness: float = 0.2,
        contrast: float = 0.2,
        saturation: float = 0.2,
        hue: float = 0.0,
        erasing_p: float = 0.0,
        erasing_scale: tuple[float, float] = (0.02, 0.33),
        seed: int | None = None,
    ):
        for name in ("image_mean", "image_std"):
            if getattr(image_processor, name, None) is None:
                raise TypeError(f"image_processor must be an image processor with {name} (e.g. ViTImageProcessorPil).")
        check_image_processor(image_processor)
        for name, value in (
            ("hflip_p", hflip_p),
            ("vflip_p", vflip_p),
            ("color_jitter_p", color_jitter_p),
            ("erasing_p", erasing_p),
        ):
            if not 0.0 <= value <= 1.0:
                raise InvalidInputError(f"{name} must be a probability in [0, 1], got {value}.")
        self.image_processor = image_processor
        self.train = train
        self.seed = seed
        self.epoch = 0
        mean = torch.as_tensor(image_processor.image_mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.as_tensor(image_processor.image_std, dtype=torch.float32).view(1, -1, 1, 1)
        self.mean, self.std = mean, std
        self.hflip_p, self.vflip_p, self.erasing_p = hflip_p, vflip_p, erasing_p
        self.erasing_scale = erasing_scale
        self.color_jitter: nn.Module | None = None
        if color_jitter_p > 0 and max(brightness, contrast, saturation, hue) > 0:
            strengths = {"brightness": brightness, "contrast": contrast, "saturation": saturation, "hue": hue}
            self.color_jitter = K.ColorJitter(**strengths, p=color_jitter_p)

    def __repr__(self) -> str:
        parts = [f"hflip_p={self.hflip_p}", f"vflip_p={self.vflip_p}"]
        parts += [repr(self.color_jitter)] if self.color_jitter is not None else []
        parts += [f"erasing_p={self.erasing_p}, erasing_scale={self.erasing_scale}"] if self.erasing_p > 0 else []
        return f"{type(self).__name__}(train={self.train}, augmentations=[{', '.join(parts)}])"

    def set_epoch(self, epoch: int) -> None:
        """Use `epoch`'s augmentations (with a `seed`; see the class docstring)."""
        self.epoch = int(epoch)

    def sample_seeds(self, images: Sequence[Image.Image], keys: Sequence[str] | None = None) -> list[int]:
        """One 63-bit seed per image from ``(seed, epoch, key, repeat)``; `keys` default to pixel digests."""
        if keys is None:
            keys = [hashlib.blake2b(load_rgb(image).tobytes(), digest_size=16).hexdigest() for image in images]
        seen: dict[str, int] = {}
        seeds = []
        for key in keys:
            repeat = seen[key] = seen.get(key, -1) + 1  # a PK batch may hold one image twice: vary its augmentation
            digest = hashlib.blake2b(f"{self.seed}\0{self.epoch}\0{key}\0{repeat}".encode(), digest_size=8).digest()
            seeds.append(int.from_bytes(digest, "little") >> 1)
        return seeds

    def _augment_image(self, pixels: torch.Tensor, generator: torch.Generator | None, seed: int | None) -> torch.Tensor:
        """One image `(1, 3, height, width)` in [0, 1] -> augmented and normalised (a new tensor).

        Flips and the erased box are drawn from `generator` (`None`: torch's global generator) and applied as plain
        tensor ops, a few microseconds an image; only colour jitter runs kornia, which draws from the global
        generator, so a seeded image runs it under `fork_rng` seeded with its `seed`.
        """
        if self.hflip_p > 0 and torch.rand((), generator=generator) < self.hflip_p:
            pixels = pixels.flip(-1)
        if self.vflip_p > 0 and torch.rand((), generator=generator) < self.vflip_p:
            pixels = pixels.flip(-2)
        if self.color_jitter is not None:
            if seed is None:
                pixels = self.color_jitter(pixels).clamp_(0.0, 1.0)
            else:
                with torch.random.fork_rng(devices=[]):  # leaves the global generator (dropout's) as it was
                    torch.manual_seed(seed)
                    pixels = self.color_jitter(pixels).clamp_(0.0, 1.0)
        pixels = (pixels - self.mean) / self.std
        if self.erasing_p > 0 and torch.rand((), generator=generator) < self.erasing_p:
            top, left, height, width = erasing_box(pixels.shape[-2:], self.erasing_scale, generator)
            pixels[..., top : top + height, left : left + width] = 0.0  # the mean colour after normalisation
        return pixels

    def pixel_values(self, images: Sequence[Image.Image], keys: Sequence[str] | None = None) -> torch.Tensor:
        """Transform PIL `images` into a float32 tensor of shape (len(images), 3, height, width).

        `keys` (one per image, e.g. its path) seed the augmentations when the transform has a `seed`.
        """
        rgb_images = [load_rgb(image) for image in images]
        if not self.train:
            return self.image_processor(rgb_images, return_tensors="pt")["pixel_values"]
        pixels = self.image_processor(rgb_images, do_normalize=False, return_tensors="pt")["pixel_values"]  # [0, 1]
        return self.augment_pixels(pixels, None if self.seed is None else self.sample_seeds(rgb_images, keys))

    def augment_pixels(self, pixels: torch.Tensor, seeds: Sequence[int] | None = None) -> torch.Tensor:
        """The training augmentations and normalisation of resized, rescaled `pixels` (batch, 3, height, width) in
        [0, 1]; the same float32 shape out. `seeds` (one per image, from `sample_seeds`) seed each image's
        augmentation; `None` draws from torch's global generator. Used by `pixel_values` and by images decoded once
        into memory (`hf_lareid.data.in_memory`)."""
        with torch.no_grad():
            if seeds is None:
                augmented = [self._augment_image(image[None], None, None) for image in pixels]
            else:
                augmented = [
                    self._augment_image(image[None], torch.Generator().manual_seed(seed), seed)
                    for image, seed in zip(pixels, seeds, strict=True)
                ]
        return torch.cat(augmented).contiguous()

    def __call__(self, batch: dict[str, list]) -> dict[str, Any]:
        if "image" not in batch:
            raise KeyError(f"The batch has no 'image' column (columns: {sorted(batch)}); use load_reid_dataset.")
        keys = None
        if "path" in batch:  # relative to each set's data_dir: the label tells merged sets apart
            labels = batch["label"] if "label" in batch else [""] * len(batch["path"])
            keys = augmentation_keys(labels, batch["path"])
        output: dict[str, Any] = {"pixel_values": self.pixel_values(batch["image"], keys)}
        for column in PASSTHROUGH_COLUMNS:
            if column in batch:
                output[column] = batch[column]
        return output


def build_train_transform(image_processor: Any, **augmentation_options) -> ReIDTransform:
    """Training transform: processor resize, then the augmentations of :class:`ReIDTransform`, then normalise.

    Example:
        >>> transform = build_train_transform(processor, vflip_p=0.0, erasing_p=0.5)  # doctest: +SKIP
        >>> data["train"].set_transform(transform)  # doctest: +SKIP
    """
    return ReIDTransform(image_processor, train=True, **augmentation_options)


def build_eval_transform(image_processor: Any) -> ReIDTransform:
    """Evaluation transform: exactly ``image_processor(images, return_tensors="pt")["pixel_values"]``.

    Example:
        >>> gallery = data["gallery"].with_transform(build_eval_transform(processor))  # doctest: +SKIP
    """
    return ReIDTransform(image_processor, train=False)
