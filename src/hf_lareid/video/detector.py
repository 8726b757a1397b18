"""People from a Hugging Face object-detection model (`pipeline("object-detection")`), person class only."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Union

import numpy as np
from PIL import Image

from .errors import VideoInputError
from .mot import Detections

PERSON_LABELS = ("person", "pedestrian")


class PersonDetector:
    """
    Finds people in frames with an object-detection model (a Hub id or a saved folder, e.g.
    `facebook/detr-resnet-50`, `hustvl/yolos-tiny`); boxes of other classes are dropped.

    Args:
        model: Hub id or folder of an object-detection model with a "person" (or "pedestrian") label.
        threshold: the lowest score kept.
        device: where the model runs (`"cpu"`, `"cuda"`, an index); default: the pipeline's choice.
    """

    def __init__(self, model: Union[str, os.PathLike], threshold: float = 0.5, device=None):
        from transformers import pipeline

        self.reference = str(model)
        try:
            self.pipeline = pipeline("object-detection", model=self.reference, device=device)
        except (OSError, ValueError) as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise VideoInputError(
                f"{self.reference}: cannot load an object-detection model ({message}): give a Hub id or a folder "
                "saved with save_pretrained (model and image processor)."
            ) from error
        labels = {str(name).lower() for name in self.pipeline.model.config.id2label.values()}
        self.person_labels = labels & set(PERSON_LABELS)
        if not self.person_labels:
            raise VideoInputError(
                f"{self.reference}: the detector has no 'person' class (its labels: {sorted(labels)[:8]}...): "
                "give a detector trained on people (COCO detectors are)."
            )
        self.threshold = float(threshold)

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(N, 4)` x1, y1, x2, y2 person boxes and their `(N,)` scores in one `(height, width, 3)` RGB frame."""
        found = self.pipeline(Image.fromarray(frame), threshold=self.threshold)
        people = [item for item in found if str(item["label"]).lower() in self.person_labels]
        boxes = np.array(
            [[p["box"]["xmin"], p["box"]["ymin"], p["box"]["xmax"], p["box"]["ymax"]] for p in people], dtype=np.float64
        ).reshape(-1, 4)
        return boxes, np.array([p["score"] for p in people], dtype=np.float64)

    def detect_video(self, frames: Iterable[tuple[int, np.ndarray]], source: str) -> Detections:
        """The person boxes of every `(frame number, frame)`; [`VideoInputError`] naming `source` when there are none."""
        records = []
        for number, frame in frames:
            boxes, scores = self.detect(frame)
            keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            records.extend((number, box, score) for box, score in zip(boxes[keep], scores[keep]))
        if not records:
            raise VideoInputError(
                f"{source}: the detector {self.reference} found no person (score >= {self.threshold:g}) in any frame: "
                "nothing to index from this video (lower --detector_threshold or check the video)."
            )
        return Detections(
            frames=np.array([r[0] for r in records], dtype=np.int64),
            track_ids=np.full(len(records), -1, dtype=np.int64),
            boxes=np.stack([r[1] for r in records]),
            scores=np.array([r[2] for r in records], dtype=np.float64),
            rows=np.arange(1, len(records) + 1, dtype=np.int64),
            source=f"{source} [detector {self.reference}, detection]",
        )


__all__ = ["PersonDetector"]
