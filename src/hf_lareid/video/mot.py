"""MOT Challenge text files (`det.txt`, `gt.txt`, tracker output): one box per line,
`frame, id, left, top, width, height, confidence[, x, y, z | class, visibility]`, frames numbered from 1, `id = -1`
in detection files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .errors import VideoInputError


@dataclass
class Detections:
    """
    The boxes of one video; every array has one row per box, in file order.

    Attributes:
        frames: `(N,)` int64 frame numbers (from 1).
        track_ids: `(N,)` int64 track ids (-1 where the file has none: a detection file).
        boxes: `(N, 4)` float64 x1, y1, x2, y2 pixels.
        scores: `(N,)` float64 confidences.
        rows: `(N,)` int64 line numbers in `source` (1-based), for messages.
        source: the file (or detector) they came from.
    """

    frames: np.ndarray
    track_ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    rows: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def has_track_ids(self) -> bool:
        return len(self) > 0 and bool((self.track_ids >= 0).all())

    def select(self, keep: np.ndarray) -> Detections:
        return Detections(
            self.frames[keep], self.track_ids[keep], self.boxes[keep], self.scores[keep], self.rows[keep], self.source
        )


def read_mot(path: Union[str, os.PathLike], min_confidence: Optional[float] = None) -> Detections:
    """
    Reads a MOT Challenge file. Rows of a `gt.txt` whose "consider" flag (column 7) is 0 are dropped; `min_confidence`
    drops detections below it.

    Raises [`VideoInputError`] naming the file and the row of a malformed line (fewer than 6 numbers, a frame below 1,
    a non-positive width or height), and for a file without any box.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise VideoInputError(f"{path}: no such detections file: give a MOT det.txt / gt.txt per video.")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise VideoInputError(f"{path}: cannot read the detections ({error}): give a MOT text file.") from error
    is_ground_truth = path.name.lower().startswith("gt")
    records = []
    for row, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.replace(";", ",").split(",") if "," in line or ";" in line else line.split()
        try:
            values = [float(field) for field in fields]
        except ValueError:
            raise VideoInputError(
                f"{path} row {row}: {line.strip()!r} is not a list of numbers: MOT rows are frame, id, left, top, "
                "width, height, confidence, ..."
            ) from None
        if len(values) < 6:
            raise VideoInputError(
                f"{path} row {row}: {len(values)} values, expected at least 6 (frame, id, left, top, width, height)."
            )
        frame, track_id, left, top, width, height = values[:6]
        confidence = values[6] if len(values) > 6 else 1.0
        if frame < 1 or frame != int(frame):
            raise VideoInputError(f"{path} row {row}: frame {frame:g} is not a frame number (1, 2, ...).")
        if not (width > 0 and height > 0) or not np.isfinite(values[:6]).all():
            raise VideoInputError(f"{path} row {row}: box of width {width:g} and height {height:g}: both must be > 0.")
        if is_ground_truth and len(values) > 6 and confidence == 0:
            continue  # "do not consider" rows of a ground-truth file
        if min_confidence is not None and confidence < min_confidence:
            continue
        records.append((int(frame), int(track_id), left, top, left + width, top + height, confidence, row))
    if not records:
        raise VideoInputError(f"{path}: no boxes in the file: nothing to index from this video.")
    array = np.asarray(records, dtype=np.float64)
    return Detections(
        frames=array[:, 0].astype(np.int64),
        track_ids=array[:, 1].astype(np.int64),
        boxes=array[:, 2:6],
        scores=array[:, 6],
        rows=array[:, 7].astype(np.int64),
        source=str(path),
    )


def check_against_video(detections: Detections, num_frames: Optional[int], size: tuple[int, int]) -> None:
    """
    Raises [`VideoInputError`] naming the file and row of the first box wholly outside a frame of `size =
    (height, width)`, or naming a frame past `num_frames` (when known). Boxes partly outside are clipped later.
    """
    height, width = size
    x1, y1, x2, y2 = detections.boxes.T
    outside = (x2 <= 0) | (y2 <= 0) | (x1 >= width) | (y1 >= height)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        box = ", ".join(f"{v:g}" for v in detections.boxes[i])
        raise VideoInputError(
            f"{detections.source} row {detections.rows[i]}: box [{box}] (x1, y1, x2, y2) lies outside the "
            f"{width}x{height} frames of the video: is this the file of another video?"
        )
    if num_frames is not None:
        check_frames_exist(detections, num_frames)


def check_frames_exist(detections: Detections, num_frames: int) -> None:
    """Raises [`VideoInputError`] naming the first row whose frame is past the video's last frame `num_frames`."""
    late = detections.frames > num_frames
    if late.any():
        i = int(np.flatnonzero(late)[0])
        raise VideoInputError(
            f"{detections.source} row {detections.rows[i]}: frame {detections.frames[i]}, but the video has "
            f"{num_frames} frames: is this the file of another video?"
        )


__all__ = ["Detections", "check_against_video", "check_frames_exist", "read_mot"]
