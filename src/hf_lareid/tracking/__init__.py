"""A multi-object tracker's re-ID backend: a frame and its person boxes in, one unit-norm embedding per box out.

Example:
    >>> from hf_lareid.tracking import ReIDBackend
    >>> backend = ReIDBackend("./my-model")  # doctest: +SKIP
    >>> backend.embed_boxes(frame, boxes).shape  # frame (H, W, 3) uint8 RGB, boxes (N, 4) xyxy  # doctest: +SKIP
    (N, 10752)
"""

from .reid_backend import BoxError, ReIDBackend, clip_boxes, crop_boxes

__all__ = ["BoxError", "ReIDBackend", "clip_boxes", "crop_boxes"]
