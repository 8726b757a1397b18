"""Tracklets: the boxes of one person in one video, a few sampled crops embedded and averaged into one vector.

A tracklet is stored in a gallery index under a key in the `paths` column, a media-fragment URI (W3C Media
Fragments: `t=start,end` in seconds, `track=`) with the frames and sampled boxes added:

    videos/cam1.mp4#t=1.200,4.400&track=3&frames=31-111&of=7&fps=25&samples=31:10,20,32,64;71:40,22,32,64

`of` is the number of tracklets of the video (a video holding that many is complete: a re-run skips it); `samples`
are the frames and `x,y,w,h` boxes whose crops were embedded, the middle one the thumbnail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..utils.errors import InvalidInputError
from .errors import VideoInputError
from .mot import Detections

KEY_SEPARATOR = "#"


def hms(seconds: float) -> str:
    """`3725.4` -> `"01:02:05"`."""
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


@dataclass
class Tracklet:
    """
    One person's boxes in one video.

    Attributes:
        video: the video file or frames folder, as given.
        camera_id: its camera.
        track_id: the track id (of the MOT file, or of the IoU linker).
        first_frame, last_frame: frame numbers (from 1).
        fps: the video's frame rate (times are `(frame - 1) / fps`).
        samples: `[(frame, (x1, y1, x2, y2)), ...]` the boxes whose crops are embedded, by frame.
        rows: for each sample, where its box came from (`"det.txt row 12"`), for messages.
        num_in_video: how many tracklets the video has.
    """

    video: str
    camera_id: int
    track_id: int
    first_frame: int
    last_frame: int
    fps: float
    samples: list[tuple[int, tuple[int, int, int, int]]]
    rows: list[str] = field(default_factory=list)
    num_in_video: int = 0

    @property
    def start_time(self) -> float:
        return (self.first_frame - 1) / self.fps

    @property
    def end_time(self) -> float:
        return (self.last_frame - 1) / self.fps

    @property
    def time_range(self) -> str:
        """`"00:00:01-00:00:04"`."""
        return f"{hms(self.start_time)}-{hms(self.end_time)}"

    @property
    def thumbnail(self) -> tuple[int, tuple[int, int, int, int]]:
        """`(frame, (x1, y1, x2, y2))` of the middle sample."""
        return self.samples[len(self.samples) // 2]

    def key(self) -> str:
        """The index key of this tracklet (see the module docstring)."""
        samples = ";".join(f"{frame}:{x1},{y1},{x2 - x1},{y2 - y1}" for frame, (x1, y1, x2, y2) in self.samples)
        return (
            f"{self.video}{KEY_SEPARATOR}t={self.start_time:.3f},{self.end_time:.3f}&track={self.track_id}"
            f"&frames={self.first_frame}-{self.last_frame}&of={self.num_in_video}&fps={self.fps:g}&samples={samples}"
        )

    @classmethod
    def from_key(cls, key: str, camera_id: int = -1) -> Tracklet:
        """The tracklet of an index key written by [`key`]; `ValueError` for another kind of entry (an image path)."""
        video, separator, fragment = key.rpartition(KEY_SEPARATOR)
        try:
            if not separator:
                raise InvalidInputError("no fragment")
            values = dict(part.split("=", 1) for part in fragment.split("&"))
            first, last = (int(v) for v in values["frames"].split("-"))
            samples = []
            for item in values["samples"].split(";"):
                frame, box = item.split(":")
                x, y, w, h = (int(v) for v in box.split(","))
                samples.append((int(frame), (x, y, x + w, y + h)))
            return cls(
                video=video,
                camera_id=int(camera_id),
                track_id=int(values["track"]),
                first_frame=first,
                last_frame=last,
                fps=float(values["fps"]),
                samples=samples,
                num_in_video=int(values["of"]),
            )
        except (ValueError, KeyError) as error:
            raise InvalidInputError(f"{key!r} is not a tracklet key of `lareid video index` ({error}).") from error


def is_tracklet_key(key: str) -> bool:
    try:
        Tracklet.from_key(key)
    except ValueError:
        return False
    return True


def video_of_key(key: str) -> str:
    """The video part of a tracklet key (everything before the last `#`)."""
    return key.rpartition(KEY_SEPARATOR)[0]


def build_tracklets(
    detections: Detections,
    video: str,
    camera_id: int,
    fps: float,
    frame_size: tuple[int, int],
    samples_per_tracklet: int = 4,
    min_frames: int = 3,
) -> list[Tracklet]:
    """
    The tracklets of one video from boxes with track ids, shortest ones (fewer than `min_frames` boxes: false
    detections, mostly) left out. Each samples up to `samples_per_tracklet` boxes evenly over its frames, clipped to
    the frame (`frame_size = (height, width)`).
    """
    if samples_per_tracklet < 1:
        raise InvalidInputError(f"samples_per_tracklet must be >= 1, got {samples_per_tracklet}.")
    from ..tracking.reid_backend import clip_boxes

    tracklets = []
    for track_id in np.unique(detections.track_ids):
        rows = np.flatnonzero(detections.track_ids == track_id)
        rows = rows[np.argsort(detections.frames[rows], kind="stable")]
        if len(rows) < min_frames:
            continue
        chosen = rows[
            np.unique(np.linspace(0, len(rows) - 1, min(samples_per_tracklet, len(rows))).round().astype(int))
        ]
        sources = [f"{detections.source} row {detections.rows[r]}" for r in chosen]
        boxes = [clip_boxes(detections.boxes[r : r + 1], frame_size, source)[0] for r, source in zip(chosen, sources)]
        tracklets.append(
            Tracklet(
                video=video,
                camera_id=camera_id,
                track_id=int(track_id),
                first_frame=int(detections.frames[rows[0]]),
                last_frame=int(detections.frames[rows[-1]]),
                fps=fps,
                samples=[(int(detections.frames[r]), tuple(int(v) for v in box)) for r, box in zip(chosen, boxes)],
                rows=sources,
            )
        )
    for tracklet in tracklets:
        tracklet.num_in_video = len(tracklets)
    return tracklets


def average_embeddings(embeddings: np.ndarray, counts: list[int]) -> np.ndarray:
    """`(sum(counts), D)` sample embeddings -> `(len(counts), D)` float32: each tracklet's mean, L2-normalised."""
    starts = np.cumsum([0, *counts])
    means = np.stack([embeddings[a:b].mean(axis=0) for a, b in zip(starts[:-1], starts[1:])])
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    return (means / np.maximum(norms, 1e-12)).astype(np.float32)


def require_tracklets(tracklets: list[Tracklet], source: str, min_frames: int) -> None:
    if not tracklets:
        raise VideoInputError(
            f"{source}: no person is seen in {min_frames} frames or more: nothing to index from this video "
            "(check the detections, or lower --min_frames / the detector's --detector_threshold)."
        )


__all__ = [
    "Tracklet",
    "average_embeddings",
    "build_tracklets",
    "hms",
    "is_tracklet_key",
    "require_tracklets",
    "video_of_key",
]
