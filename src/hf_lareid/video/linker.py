"""A simple IoU linker: joins per-frame detections into tracks, greedily, frame after frame."""

from __future__ import annotations

import numpy as np


def box_iou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes `(N, 4)` and `(M, 4)` (x1, y1, x2, y2) -> `(N, M)`."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    top_left = np.maximum(first[:, None, :2], second[None, :, :2])
    bottom_right = np.minimum(first[:, None, 2:], second[None, :, 2:])
    intersection = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_first = np.prod(first[:, 2:] - first[:, :2], axis=1)
    area_second = np.prod(second[:, 2:] - second[:, :2], axis=1)
    union = area_first[:, None] + area_second[None, :] - intersection
    return np.where(union > 0, intersection / np.maximum(union, 1e-12), 0.0)


def link_by_iou(
    frames: np.ndarray, boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.3, max_gap: int = 5
) -> np.ndarray:
    """
    Track ids `(N,)` int64 (from 1) for detections `frames (N,)`, `boxes (N, 4)` xyxy, `scores (N,)`.

    Frame by frame, the detections (best score first) take the free track whose predicted box (its last box moved at
    its last per-frame velocity) overlaps theirs most, if that IoU reaches `iou_threshold` and the track was seen at
    most `max_gap` frames before; the others start tracks.
    """
    track_ids = np.zeros(len(frames), dtype=np.int64)
    last_box: dict[int, np.ndarray] = {}
    velocity: dict[int, np.ndarray] = {}
    last_frame: dict[int, int] = {}
    next_id = 1
    for frame in np.unique(frames):
        rows = np.flatnonzero(frames == frame)
        rows = rows[np.argsort(-scores[rows], kind="stable")]
        alive = [t for t, seen in last_frame.items() if frame - seen <= max_gap]
        predicted = [last_box[t] + velocity[t] * (frame - last_frame[t]) for t in alive]
        overlaps = box_iou(boxes[rows], np.stack(predicted)) if alive else np.zeros((len(rows), 0))
        taken: set[int] = set()
        for position, row in enumerate(rows):
            best, best_iou = None, iou_threshold
            for column, track in enumerate(alive):
                if track not in taken and overlaps[position, column] >= best_iou:
                    best, best_iou = track, overlaps[position, column]
            if best is None:
                best, next_id = next_id, next_id + 1
                velocity[best] = np.zeros(4)
            else:
                velocity[best] = (boxes[row] - last_box[best]) / (frame - last_frame[best])
            taken.add(best)
            track_ids[row] = best
            last_box[best], last_frame[best] = boxes[row], int(frame)
    return track_ids


__all__ = ["box_iou", "link_by_iou"]
