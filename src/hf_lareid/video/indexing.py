"""Indexing videos: detections (MOT files or a detector) -> tracklets -> one averaged embedding per tracklet, added
to a gallery index (FAISS or Qdrant) under its tracklet key, saved every few tracklets so a re-run continues."""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from tqdm.auto import tqdm

from .detector import PersonDetector
from .errors import VideoInputError
from .linker import link_by_iou
from .mot import Detections, check_against_video, read_mot
from .reader import VideoSource, camera_from_name, open_video
from .tracklets import Tracklet, average_embeddings, build_tracklets, require_tracklets, video_of_key

logger = logging.getLogger(__name__)

VIDEO_INDEX_DATASET = "video-tracklets"
"""What a gallery index of tracklets records as its `dataset` (`lareid video search` checks it)."""


@dataclass
class VideoJob:
    """
    One video to index.

    Attributes:
        path: a video file, a frames folder or a MOT Challenge sequence folder (`img1/`, `seqinfo.ini`).
        camera_id: its camera (default: read from its name, `cam2.mp4` -> 2).
        detections: its MOT `det.txt` / `gt.txt` (default: a MOT sequence's `gt/gt.txt` or `det/det.txt`, else the
            detector).
        fps: frame rate of a frames folder (or overriding a file's).
    """

    path: str
    camera_id: Optional[int] = None
    detections: Optional[str] = None
    fps: Optional[float] = None

    def resolved(self) -> VideoJob:
        """Absolute path, camera and detections filled in; [`VideoInputError`] when the camera is unknown."""
        path = str(Path(self.path).expanduser().absolute())
        camera = self.camera_id if self.camera_id is not None else camera_from_name(path)
        if camera is None:
            raise VideoInputError(
                f"{self.path}: no camera number in its name (cam1.mp4, c2/): give the cameras with --cameras."
            )
        detections = self.detections
        if detections is None and Path(path).is_dir():
            for candidate in ("gt/gt.txt", "det/det.txt"):
                if (Path(path) / candidate).is_file():
                    detections = str(Path(path) / candidate)
                    break
        return VideoJob(path, int(camera), detections, self.fps)


def indexed_tracklets(index) -> dict[str, Counter]:
    """`{video: Counter({num_in_video: tracklets held})}` of the tracklet keys an index holds."""
    held: dict[str, Counter] = {}
    for key in index.paths or ():
        video = video_of_key(key)
        if video:
            try:
                total = Tracklet.from_key(key).num_in_video
            except ValueError:
                continue
            held.setdefault(video, Counter())[total] += 1
    return held


def index_videos(
    backend,
    jobs: list[VideoJob],
    index,
    index_dir: Union[str, os.PathLike],
    detector: Optional[PersonDetector] = None,
    samples_per_tracklet: int = 4,
    min_frames: int = 3,
    iou_threshold: float = 0.3,
    max_gap: int = 5,
    min_confidence: Optional[float] = None,
    checkpoint_every: int = 100,
    progress: bool = True,
) -> int:
    """
    Adds the tracklets of `jobs` to `index`, saving it to `index_dir` every `checkpoint_every` tracklets and after
    each video. A video whose tracklets are all indexed is skipped; of a partly indexed one (an interrupted run) only
    the missing tracklets are embedded. Every video is checked (readable, detections inside its frames and frame
    count) before anything of it is added.

    Args:
        backend: the [`hf_lareid.tracking.ReIDBackend`] embedding the crops.
        jobs: the videos ([`VideoJob`]).
        index: a `GalleryIndex` / `QdrantGalleryIndex` (made with `dataset=VIDEO_INDEX_DATASET`).
        index_dir: where to save it.
        detector: finds people in videos without a detections file.
        samples_per_tracklet: crops embedded and averaged per tracklet.
        min_frames: shorter tracks are left out.
        iou_threshold, max_gap: the IoU linker's settings, for detections without track ids.
        min_confidence: detections below it are dropped.
        checkpoint_every: tracklets added between saves.
        progress: show progress bars (frames/s).

    Returns:
        The number of tracklets added.
    """
    jobs = [job.resolved() for job in jobs]
    sources = {job.path: open_video(job.path, job.fps) for job in jobs}  # every video opens before any work
    held = indexed_tracklets(index)
    added = 0
    for job in jobs:
        source = sources[job.path]
        counts = held.get(job.path, Counter())
        if counts and all(count >= total for total, count in counts.items()):
            logger.info("%s: all %d tracklets already indexed, skipped.", job.path, sum(counts.values()))
            continue
        detections = _detections(job, source, detector, min_confidence, progress)
        if not detections.has_track_ids:
            detections.track_ids = link_by_iou(
                detections.frames, detections.boxes, detections.scores, iou_threshold, max_gap
            )
        tracklets = build_tracklets(
            detections, job.path, job.camera_id, source.fps, source.size, samples_per_tracklet, min_frames
        )
        require_tracklets(tracklets, detections.source, min_frames)
        indexed = index.indexed_paths
        todo = [t for t in tracklets if t.key() not in indexed]
        if len(todo) < len(tracklets):
            print(f"resuming {job.path}: {len(tracklets) - len(todo)} of {len(tracklets)} tracklets indexed")
        added += _embed_and_add(backend, source, todo, index, index_dir, checkpoint_every, progress)
    return added


def _detections(
    job: VideoJob, source: VideoSource, detector: Optional[PersonDetector], min_confidence, progress: bool
) -> Detections:
    if job.detections is not None:
        detections = read_mot(job.detections, min_confidence)
        num_frames = source.num_frames if source.num_frames is not None else _count_frames(source, progress)
        check_against_video(detections, num_frames, source.size)
        return detections
    if detector is None:
        raise VideoInputError(
            f"{job.path}: no detections for this video: give its MOT file with --detections or a --detector."
        )
    with tqdm(
        total=source.num_frames, desc=f"Detecting {Path(job.path).name}", unit="frame", disable=not progress
    ) as bar:
        return detector.detect_video(_counted(source.frames(), bar), job.path)


def _counted(frames, bar):
    for item in frames:
        yield item
        bar.update()


def _count_frames(source: VideoSource, progress: bool) -> int:
    with tqdm(desc=f"Counting frames of {Path(source.path).name}", unit="frame", disable=not progress) as bar:
        return sum(1 for _ in _counted(source.frames(), bar))


def _embed_and_add(backend, source: VideoSource, todo: list[Tracklet], index, index_dir, every: int, progress) -> int:
    """Decodes the sampled frames of `todo`, embeds each tracklet once its samples are cropped, adds, saves."""
    if not todo:
        return 0
    from ..tracking.reid_backend import crop_boxes

    by_frame: dict[int, list[tuple[int, int]]] = {}  # frame -> [(tracklet position, sample position)]
    for position, tracklet in enumerate(todo):
        for sample, (frame, _) in enumerate(tracklet.samples):
            by_frame.setdefault(frame, []).append((position, sample))
    last_sample = {position: max(frame for frame, _ in t.samples) for position, t in enumerate(todo)}
    crops: dict[int, list] = {position: [None] * len(t.samples) for position, t in enumerate(todo)}
    ready: list[int] = []
    added = since_save = 0
    decoded = 0
    name = Path(source.path).name
    with tqdm(total=max(by_frame), desc=f"Indexing {name}", unit="frame", disable=not progress) as bar:
        for number, frame in source.frames(by_frame):
            bar.update(number - bar.n)
            decoded = number
            for position, sample in by_frame[number]:
                tracklet = todo[position]
                box = tracklet.samples[sample][1]
                crops[position][sample] = crop_boxes(frame, [box], source=tracklet.rows[sample])[0]
            ready.extend(p for p in dict.fromkeys(p for p, _ in by_frame[number]) if last_sample[p] == number)
            if len(ready) >= backend.batch_size or number == max(by_frame):
                count = _add_tracklets(backend, [todo[p] for p in ready], [crops.pop(p) for p in ready], index)
                ready, added, since_save = [], added + count, since_save + count
                if since_save >= every:
                    index.save(index_dir)
                    since_save = 0
    if decoded < max(by_frame):  # a container that recorded more frames than it holds
        raise VideoInputError(
            f"{source.path}: the video ends at frame {decoded}, before frame {max(by_frame)} that its detections "
            "name: re-encode the video or give its own detections file."
        )
    index.save(index_dir)
    return added


def _add_tracklets(backend, tracklets: list[Tracklet], crops: list[list], index) -> int:
    if not tracklets:
        return 0
    embeddings = backend.embed_crops([crop for group in crops for crop in group])
    vectors = average_embeddings(embeddings, [len(group) for group in crops])
    index.add(vectors, camera_ids=[t.camera_id for t in tracklets], paths=[t.key() for t in tracklets])
    return len(tracklets)


__all__ = ["VIDEO_INDEX_DATASET", "VideoJob", "index_videos", "indexed_tracklets"]
