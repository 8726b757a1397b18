"""The one image loader of hf-lareid: any PIL image, path, URL or array -> an 8-bit RGB PIL image.

Every path that turns a picture into pixels uses :func:`load_rgb`: the training and evaluation transforms, the
pipeline, `extract_features` (Trainer evaluation, `lareid index`, `lareid evaluate`) and the pictures. PIL's own
``convert("RGB")`` clips 16-bit and float images (a 16-bit PNG becomes white) and drops alpha without compositing;
`load_rgb` scales them instead:

| mode | becomes |
|---|---|
| ``I;16`` (16-bit PNG/TIFF) | value / 257 (65535 -> 255), grey |
| ``I`` (32-bit int) | value / 257 when every value is in 0..65535 (how PIL reads 16-bit files), else min..max -> 0..255 |
| ``F`` (32-bit float) | x 255 when every value is in [0, 1]; as is when in [0, 255]; else min..max -> 0..255 |
| ``RGBA``, ``LA``, ``PA``, ``P`` / ``L`` / ``RGB`` with a transparent colour | composited over `background` (white) |
| ``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ... | PIL's conversion |

An EXIF orientation tag is applied (a phone photo stands upright), as `datasets.Image` and transformers'
`load_image` do. This module is a leaf: it imports only PIL and numpy (and httpx, lazily, for URLs).

Example:
    >>> from PIL import Image
    >>> load_rgb(Image.new("I;16", (32, 64), 65535)).getpixel((0, 0))
    (255, 255, 255)
"""

from __future__ import annotations

import io
import os
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InvalidInputError

__all__ = ["ImageLike", "ImageReadError", "load_rgb", "needs_load_rgb", "read_image"]

ImageLike = Union[Image.Image, str, os.PathLike, np.ndarray]
"""What `load_rgb` accepts: a PIL image, a local path, an http(s) URL, or an `(height, width[, channels])` array."""

WHITE = (255, 255, 255)

# Errors PIL raises on a file it cannot decode: unknown format, truncated data, bad chunks.
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


class ImageReadError(InvalidInputError):
    """An image cannot be read; the message names the file and says how to fix it."""


def _describe(source: str, error: BaseException) -> str:
    if isinstance(error, Image.DecompressionBombError):
        return (
            f"Image {source} is too large to decode safely ({error}); it may be a decompression bomb. Shrink or "
            "remove it, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file."
        )
    if isinstance(error, FileNotFoundError):
        return f"Image {source} does not exist. Check the path."
    if isinstance(error, PermissionError):
        return (
            f"Image {source} cannot be read: permission denied (the file is fine; this user may not read it). "
            f"Give read access (chmod a+r {source}) or run as a user who can read it."
        )
    return (
        f"Image {source} cannot be decoded ({error}); it is corrupt or truncated. "
        "Replace it with a good copy or delete it, then load again."
    )


def read_image(path: str | os.PathLike | io.BytesIO, name: str | None = None) -> Image.Image:
    """
    Open and fully decode the image file at `path` (in its own mode; see `load_rgb` for RGB).

    Raises `ImageReadError` naming the file (or `name`) when it is missing, corrupt, truncated or a decompression
    bomb (more pixels than `PIL.Image.MAX_IMAGE_PIXELS` allows).
    """
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except _DECODE_ERRORS as error:
        raise ImageReadError(_describe(name or str(path), error)) from error


def _read_url(url: str, timeout: float | None) -> Image.Image:
    import httpx  # installed with huggingface_hub; only URLs need it

    try:
        response = httpx.get(url, timeout=timeout if timeout is not None else 30.0, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPError as error:
        raise ImageReadError(f"Image {url} cannot be downloaded ({error}). Check the URL and the network.") from error
    return read_image(io.BytesIO(response.content), name=url)


def _from_array(array: np.ndarray) -> Image.Image:
    """
    A `(height, width)` or `(height, width, 1|3|4)` array -> a PIL image. uint8 is taken as is; colour arrays of
    another dtype are read as 0..1 floats or 0..255 values; grey ones go through the mode rules (uint16 as ``I;16``,
    floats as ``F``, other integers as ``I``).
    """
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ImageReadError(
            f"an image array must have shape (height, width) or (height, width, 3|4), got shape {array.shape}."
        )
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.ndim == 3 and array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating) and np.nanmax(array, initial=0.0) <= 1.0:
            array = array * 255.0
        array = np.clip(np.nan_to_num(array), 0, 255).round().astype(np.uint8)
    elif array.ndim == 2 and array.dtype not in (np.uint8, np.uint16):
        array = array.astype(np.float32 if np.issubdtype(array.dtype, np.floating) else np.int32)
    return Image.fromarray(np.ascontiguousarray(array))


def _scaled_grey(image: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit integer or float grey image -> mode ``L``, scaled (see the module's table), not clipped."""
    values = np.asarray(image, dtype=np.float64)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if image.mode.startswith("I;16") or (image.mode == "I" and low >= 0 and high <= 65535):
        values = values / 257.0
    elif image.mode == "F" and low >= 0 and high <= 1:
        values = values * 255.0
    elif not (image.mode == "F" and low >= 0 and high <= 255):
        values = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    return Image.fromarray(np.clip(values.round(), 0, 255).astype(np.uint8))  # 2-D uint8 -> mode L


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def needs_load_rgb(image: Image.Image) -> bool:
    """Whether PIL's own ``convert("RGB")`` gives another picture than `load_rgb`: 16-bit, 32-bit and float images
    (clipped) and transparent ones (alpha dropped). `datasets.Image(mode="RGB")` converts that way."""
    return image.mode.startswith("I") or image.mode == "F" or _has_alpha(image)


def load_rgb(
    image: ImageLike, *, timeout: float | None = None, background: tuple[int, int, int] = WHITE
) -> Image.Image:
    """
    An 8-bit RGB PIL image from a PIL image (any mode), a local path, an http(s) URL or a numpy array.

    16-bit, 32-bit and float images are scaled to 0..255 (not clipped); transparent pixels are composited over
    `background`; an EXIF orientation is applied. Raises `ImageReadError` (a `ValueError`) naming the file when it
    is missing, corrupt or a decompression bomb, `TypeError` for anything else.

    Example:
        >>> load_rgb("person.png").mode  # doctest: +SKIP
        'RGB'
    """
    source = "in memory"
    if isinstance(image, (str, os.PathLike)):
        source = os.fspath(image)
        is_url = isinstance(source, str) and source.startswith(("http://", "https://"))
        image = _read_url(source, timeout) if is_url else read_image(source)
    elif isinstance(image, np.ndarray):
        image = _from_array(image)
    elif not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image, a path, a URL or a numpy array, got {type(image).__name__}.")
    else:
        source = getattr(image, "filename", "") or source  # an opened file decodes lazily, below
    try:
        image.load()  # decodes a lazily opened file (a no-op when loaded)
        if image.getexif().get(Image.ExifTags.Base.Orientation, 1) != 1:
            image = ImageOps.exif_transpose(image)
        if image.mode == "RGB" and "transparency" not in image.info:
            return image
        if image.mode.startswith("I") or image.mode == "F":
            return _scaled_grey(image).convert("RGB")
        if _has_alpha(image):
            rgba = image.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, (*background, 255))
            return Image.alpha_composite(canvas, rgba).convert("RGB")
        return image.convert("RGB")
    except _DECODE_ERRORS as error:
        raise ImageReadError(_describe(source, error)) from error
