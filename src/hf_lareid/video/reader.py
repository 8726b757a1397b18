"""Reading videos frame by frame: a video file (decoded in-process by PyAV, the `video` extra: FFmpeg's libraries
come inside its wheel, no system ffmpeg needed) or a folder of frame images with a frame rate.

Frames are numbered from 1, as in MOT Challenge files; frame `n` is shown at `(n - 1) / fps` seconds.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..utils.extras import require_extra
from ..utils.images import ImageReadError, load_rgb
from .errors import VideoInputError

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts"})
FRAME_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
MOT_FRAMES_FOLDER = "img1"  # a MOT Challenge sequence: SEQ/img1/000001.jpg, SEQ/seqinfo.ini, SEQ/det/det.txt
_CAMERA_IN_NAME = re.compile(r"(?:^|[^a-z0-9])(?:c|cam|camera)[_-]?(\d+)(?![0-9])", re.IGNORECASE)


def _av():
    return require_extra("av", "video", "reading video files")


def camera_from_name(path: Union[str, os.PathLike]) -> Optional[int]:
    """The camera number in a video's name (`cam2.mp4`, `c3_entrance`, `camera-1/`), or `None`."""
    match = _CAMERA_IN_NAME.search(Path(path).stem if Path(path).suffix else Path(path).name)
    return None if match is None else int(match.group(1))


@dataclass
class VideoSource:
    """
    One video: a file or a folder of frames.

    Attributes:
        path: the video file, or the frames folder (a MOT sequence folder: its `img1/`).
        fps: frames per second.
        size: `(height, width)` of the frames.
        num_frames: frame count when known up front (frame folders; files whose container says).
    """

    path: str
    fps: float
    size: tuple[int, int]
    num_frames: Optional[int] = None
    frame_files: Optional[list[Path]] = None

    @property
    def is_folder(self) -> bool:
        return self.frame_files is not None

    def time_of(self, frame: int) -> float:
        """Seconds from the start at which frame `frame` (1-based) is shown."""
        return (frame - 1) / self.fps

    def frames(self, wanted: Optional[Iterable[int]] = None) -> Iterator[tuple[int, np.ndarray]]:
        """
        `(frame number, (height, width, 3) uint8 RGB)` in order; only the `wanted` frame numbers when given (decoding
        stops after the last of them). Raises [`VideoInputError`] naming the file and frame of a corrupt frame.
        """
        wanted_set = None if wanted is None else set(int(f) for f in wanted)
        last = None if wanted_set is None else max(wanted_set, default=0)
        if last == 0:
            return
        if self.is_folder:
            for number, file in enumerate(self.frame_files, start=1):
                if last is not None and number > last:
                    return
                if wanted_set is None or number in wanted_set:
                    yield number, _read_frame_file(file, self.path, number)
            return
        av = _av()
        try:
            with av.open(self.path) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                number = 0
                for frame in container.decode(stream):
                    number += 1
                    if last is not None and number > last:
                        return
                    if wanted_set is None or number in wanted_set:
                        yield number, frame.to_ndarray(format="rgb24")
        except (av.FFmpegError, OSError) as error:
            raise VideoInputError(
                f"{self.path}: cannot decode frame {number + 1} ({error}): the video is damaged; re-encode or replace it."
            ) from error


def _read_frame_file(file: Path, folder: str, number: int) -> np.ndarray:
    try:
        return np.asarray(load_rgb(file))
    except (ImageReadError, OSError) as error:
        raise VideoInputError(
            f"{file}: frame {number} of {folder} cannot be read ({error}): replace or remove the frame."
        ) from error


def open_video(path: Union[str, os.PathLike], fps: Optional[float] = None) -> VideoSource:
    """
    Opens a video file or a folder of frames (sorted by name) as a [`VideoSource`].

    `fps` is needed for a frames folder unless it is a MOT Challenge sequence (its `seqinfo.ini` gives `frameRate`);
    for a file it overrides the rate the container records. Raises [`VideoInputError`] naming the path when it is
    missing, unreadable, empty or has no frame rate.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise VideoInputError(f"{path}: no such video file or frames folder: check the path.")
    if path.is_dir():
        return _open_folder(path, fps)
    av = _av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoInputError(f"{path}: the file holds no video stream: give a video file.")
            stream = container.streams.video[0]
            rate = fps or (float(stream.average_rate) if stream.average_rate else None)
            size = (int(stream.codec_context.height), int(stream.codec_context.width))
            num_frames = int(stream.frames) or None
    except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise VideoInputError(
            f"{path}: cannot read the video ({error}): give a video file FFmpeg reads (mp4, avi, mkv...)."
        ) from error
    if not rate or rate <= 0 or size[0] < 1 or size[1] < 1:
        raise VideoInputError(f"{path}: the video records no frame rate or size: give --fps.")
    return VideoSource(str(path), float(rate), size, num_frames)


def _open_folder(path: Path, fps: Optional[float]) -> VideoSource:
    frames_dir = path / MOT_FRAMES_FOLDER if (path / MOT_FRAMES_FOLDER).is_dir() else path
    files = sorted(p for p in frames_dir.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS and p.is_file())
    if not files:
        raise VideoInputError(
            f"{frames_dir}: no frame images ({', '.join(sorted(FRAME_EXTENSIONS))}): give a video or a frames folder."
        )
    fps = fps or _sequence_frame_rate(path)
    if not fps or fps <= 0:
        raise VideoInputError(f"{path}: a frames folder needs its frame rate: give --fps (e.g. --fps 25).")
    first = _read_frame_file(files[0], str(frames_dir), 1)
    return VideoSource(str(frames_dir), float(fps), first.shape[:2], len(files), files)


def _sequence_frame_rate(path: Path) -> Optional[float]:
    """`frameRate` of a MOT Challenge `seqinfo.ini`, if there is one."""
    info = path / "seqinfo.ini"
    if not info.is_file():
        return None
    parser = configparser.ConfigParser()
    try:
        parser.read(info)
        return float(parser["Sequence"]["frameRate"])
    except (KeyError, ValueError, configparser.Error) as error:
        raise VideoInputError(f"{info}: no readable [Sequence] frameRate ({error}): fix it or give --fps.") from error


__all__ = ["VIDEO_EXTENSIONS", "VideoSource", "camera_from_name", "open_video"]
