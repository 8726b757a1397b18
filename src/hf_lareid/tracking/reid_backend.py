"""`ReIDBackend`: the appearance model of a multi-object tracker (DeepSORT, StrongSORT, BoT-SORT, BoxMOT's re-ID
backends): `embed_boxes(frame, boxes)` crops the boxes out of a frame and embeds them in one batch."""

from __future__ import annotations

import logging
import os
from typing import Any, Union

import numpy as np
import torch
from PIL import Image

from ..embedding import BF16Option, ReIDEncoder
from ..embedding.loading import load_model_and_processor
from ..utils.errors import InvalidInputError

logger = logging.getLogger(__name__)


class BoxError(InvalidInputError):
    """A box that cannot be cropped from its frame (zero area, or wholly outside it)."""


def clip_boxes(boxes: Any, frame_size: tuple[int, int], source: str = "boxes") -> np.ndarray:
    """
    Boxes `(N, 4)` xyxy in pixels clipped to a frame of `frame_size = (height, width)`, as integer pixel bounds
    `(N, 4)` int64 (left and top rounded down, right and bottom up, so a box keeps every pixel it touches).

    Raises [`BoxError`] naming the first box (its row in `boxes`) that has zero area or lies wholly outside the
    frame; `source` names where the boxes came from in that message.
    """
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 4), dtype=np.int64)
    if array.ndim != 2 or array.shape[1] != 4:
        raise BoxError(f"{source}: expected boxes of shape (N, 4) as x1, y1, x2, y2 pixels, got shape {array.shape}.")
    height, width = frame_size
    clipped = np.stack(
        [
            np.floor(np.clip(array[:, 0], 0, width)),
            np.floor(np.clip(array[:, 1], 0, height)),
            np.ceil(np.clip(array[:, 2], 0, width)),
            np.ceil(np.clip(array[:, 3], 0, height)),
        ],
        axis=1,
    )
    bad = ~np.isfinite(array).all(axis=1) | (clipped[:, 2] <= clipped[:, 0]) | (clipped[:, 3] <= clipped[:, 1])
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        box = ", ".join(f"{value:g}" for value in array[row])
        inside = (array[row, 2] > array[row, 0]) and (array[row, 3] > array[row, 1])
        why = f"lies outside the {width}x{height} frame" if inside else "has zero area (x2 <= x1 or y2 <= y1)"
        raise BoxError(f"{source}: box {row} [{box}] {why}: give boxes as x1, y1, x2, y2 pixels inside the frame.")
    return clipped.astype(np.int64)


def crop_boxes(frame: np.ndarray, boxes: Any, bgr: bool = False, source: str = "boxes") -> list[Image.Image]:
    """The RGB crops of `boxes` `(N, 4)` xyxy (clipped, see [`clip_boxes`]) from a frame `(H, W, 3)` uint8."""
    frame = _checked_frame(frame)
    if bgr:
        frame = frame[..., ::-1]
    bounds = clip_boxes(boxes, frame.shape[:2], source)
    return [Image.fromarray(np.ascontiguousarray(frame[y1:y2, x1:x2])) for x1, y1, x2, y2 in bounds]


def _checked_frame(frame: Any) -> np.ndarray:
    if isinstance(frame, Image.Image):
        frame = np.asarray(frame.convert("RGB"))
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        got = f"{frame.dtype} array of shape {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise InvalidInputError(f"expected a frame of shape (height, width, 3) uint8, got a {got}.")
    return frame


class ReIDBackend:
    """
    Embeds person boxes of video frames, built once per model: the re-ID model of a tracker.

    Args:
        model: an `LATransformerForReID`, or a saved model folder / Hub id (loaded with its image processor).
        image_processor: the model's image processor (default: the one saved with `model` when it is a path).
        runtime: `"auto"`, `"torch"`, `"onnxruntime"`, `"openvino"` (see `hf_lareid.embedding.backends`); chosen once.
        flip: average each crop's embedding with its mirror image's (test-time augmentation).
        batch_size: crops per forward pass.
        bf16: bf16 autocast (`"auto"`: where it pays).

    Example:
        >>> backend = ReIDBackend("./my-model", runtime="onnxruntime")  # doctest: +SKIP
        >>> backend.embed_boxes(frame, [[10, 20, 60, 140], [200, 30, 250, 160]]).shape  # doctest: +SKIP
        (2, 10752)
    """

    def __init__(
        self,
        model: Union[torch.nn.Module, str, os.PathLike],
        image_processor: Any = None,
        runtime: Any = "auto",
        flip: bool = False,
        batch_size: int = 32,
        bf16: BF16Option = "auto",
    ):
        if isinstance(model, (str, os.PathLike)):
            model, saved_processor = load_model_and_processor(model)
            image_processor = image_processor or saved_processor
        if image_processor is None:
            raise InvalidInputError("ReIDBackend needs the model's image processor: pass image_processor=...")
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}.")
        self.encoder = ReIDEncoder(
            model.eval(), image_processor, runtime=runtime, bf16=bf16, flip=flip, batch_size=int(batch_size)
        )
        self.model, self.image_processor, self.flip, self.batch_size = model, image_processor, bool(flip), batch_size

    @property
    def embedder(self) -> Any:
        """The encoder's runtime [`Embedder`] (its `name` and `bf16`)."""
        return self.encoder.embedder

    @property
    def embedding_dim(self) -> int:
        return int(self.model.config.embedding_dim)

    def embed_crops(self, crops: list[Image.Image]) -> np.ndarray:
        """`(len(crops), embedding_dim)` float32 unit-norm embeddings of person crops (PIL images)."""
        if not crops:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        return self.encoder.encode(crops).embeddings

    def embed_boxes(self, frame: np.ndarray, boxes: Any, bgr: bool = False) -> np.ndarray:
        """
        Embeds the people in `boxes` of one frame.

        Args:
            frame: `(height, width, 3)` uint8, RGB (`bgr=True` for OpenCV frames).
            boxes: `(N, 4)` x1, y1, x2, y2 in pixels; parts outside the frame are clipped.
            bgr: the frame's channels are blue, green, red.

        Returns:
            `(N, embedding_dim)` float32, unit norm; `(0, embedding_dim)` for no boxes.

        Raises:
            [`BoxError`]: a box with zero area or wholly outside the frame (the message names it).
        """
        return self.embed_crops(crop_boxes(frame, boxes, bgr=bgr))

    __call__ = embed_boxes


__all__ = ["BoxError", "ReIDBackend", "clip_boxes", "crop_boxes"]
