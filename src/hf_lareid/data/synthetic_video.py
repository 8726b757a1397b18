"""A small generated multi-camera video set: the generated people of `synthetic.py` walking through 2-3 camera views
over time, with ground truth and noisy detections in MOT Challenge format, as video files and as frame folders.

Layout of `out_dir` (one MOT Challenge sequence per camera, plus its video file):

    cam1.mp4                      the camera's video (needs the `video` extra, PyAV)
    cam1/img1/000001.jpg ...      the same frames as images
    cam1/seqinfo.ini              frameRate, seqLength, imWidth, imHeight
    cam1/gt/gt.txt                frame, person id, left, top, width, height, 1, 1, 1 (ids are the same person in
                                  every camera)
    cam1/det/det.txt              noisy detections: jittered boxes, misses, false boxes, id -1
    synthetic_video.json          the options and, per person and camera, the first and last frame seen

Person `p` crosses camera `c` from frame `first` to `last`; the cameras see the people in turn, so each person has
one tracklet per camera, at another time in each.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..utils.errors import DamagedFileError, InvalidInputError
from ..utils.io import atomic_write_text
from .synthetic import _draw_image, _make_camera, _make_identity

SYNTHETIC_VIDEO_MANIFEST = "synthetic_video.json"
PERSON_SIZE = (64, 32)  # (height, width) of a person's box: the tiny test model's input size


def _schedule(num_people: int, num_cameras: int, crossing_frames: int) -> dict[tuple[int, int], int]:
    """`{(person, camera): first frame}`: people enter every 6 frames, each camera 3 frames after the previous."""
    return {(p, c): 2 + 6 * p + 3 * c for p in range(num_people) for c in range(num_cameras)}


def generate_synthetic_video(
    out_dir: str | os.PathLike,
    num_people: int = 4,
    num_cameras: int = 2,
    crossing_frames: int = 16,
    fps: float = 8.0,
    seed: int = 0,
    videos: bool = True,
) -> Path:
    """
    Draws the set into `out_dir` (new, empty, or an earlier output: an identical call reuses it) and returns its path.

    Args:
        num_people: people (ids 1..num_people), at most 8.
        num_cameras: cameras, 2 or 3 (each its own view, scene and lighting, as in `generate_synthetic_reid`).
        crossing_frames: frames a person takes to cross a view.
        fps: frame rate.
        seed: appearance seed (the same people as `generate_synthetic_reid` with this seed).
        videos: also encode each camera as `camN.mp4` (needs PyAV, the `video` extra).
    """
    if not 1 <= num_people <= 8 or num_cameras not in (2, 3) or crossing_frames < 4:
        raise InvalidInputError("num_people must be 1..8, num_cameras 2 or 3, crossing_frames >= 4.")
    options = dict(
        num_people=num_people,
        num_cameras=num_cameras,
        crossing_frames=crossing_frames,
        fps=fps,
        seed=seed,
        videos=videos,
    )
    out_dir = Path(out_dir).expanduser().absolute()
    manifest = out_dir / SYNTHETIC_VIDEO_MANIFEST
    if manifest.is_file():
        try:
            recorded = json.loads(manifest.read_text())
        except ValueError as error:
            raise DamagedFileError(
                f"{manifest} is damaged ({error}): delete {out_dir} and run again, or give a new folder."
            ) from None
        if not isinstance(recorded, dict):
            raise DamagedFileError(f"{manifest} is damaged: delete {out_dir} and run again, or give a new folder.")
        if recorded.get("options") == options:
            return out_dir
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty and holds no {SYNTHETIC_VIDEO_MANIFEST}: give a new folder.")
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".synthetic-video-", dir=out_dir))
    schedule = _schedule(num_people, num_cameras, crossing_frames)
    num_frames = max(schedule.values()) + crossing_frames + 2
    height, width = 2 * PERSON_SIZE[0] + 16, 5 * PERSON_SIZE[1]
    identities = [_make_identity(np.random.default_rng([seed, p + 1])) for p in range(num_people)]
    seen = {}
    for c in range(num_cameras):
        camera = _make_camera(np.random.default_rng([seed, 1_000_000 + c]), c)
        rng = np.random.default_rng([seed, 3_000_000 + c])
        background = _background(camera, (height, width), rng)
        folder = staging / f"cam{c + 1}"
        for sub in ("img1", "gt", "det"):
            (folder / sub).mkdir(parents=True)
        frames, gt_lines, det_lines = [], [], []
        for frame_number in range(1, num_frames + 1):
            canvas = background.copy()
            for p, identity in enumerate(identities):
                step = frame_number - schedule[(p, c)]
                if not 0 <= step < crossing_frames:
                    continue
                progress = step / (crossing_frames - 1)
                x = int(round((progress if c % 2 == 0 else 1 - progress) * (width - PERSON_SIZE[1])))
                y = 8 + (p % 2) * (PERSON_SIZE[0] + 4)
                crop = _draw_image(identity, camera, np.random.default_rng([seed, p + 1, c, step]), PERSON_SIZE)
                canvas.paste(crop, (x, y))
                seen.setdefault(f"{p + 1}", {}).setdefault(f"cam{c + 1}", [frame_number, frame_number])[1] = (
                    frame_number
                )
                box = (x, y, PERSON_SIZE[1], PERSON_SIZE[0])
                gt_lines.append(f"{frame_number},{p + 1},{box[0]},{box[1]},{box[2]},{box[3]},1,1,1")
                if rng.random() < 0.1:  # a missed detection
                    continue
                jitter = rng.normal(0, 1.5, 4)
                det_lines.append(
                    f"{frame_number},-1,{box[0] + jitter[0]:.1f},{box[1] + jitter[1]:.1f},"
                    f"{box[2] + jitter[2]:.1f},{box[3] + jitter[3]:.1f},{rng.uniform(0.6, 1.0):.3f},-1,-1,-1"
                )
            if rng.random() < 0.2:  # a false box on the background, seen once
                fx, fy = rng.uniform(0, width - 20), rng.uniform(0, height - 40)
                det_lines.append(f"{frame_number},-1,{fx:.1f},{fy:.1f},20.0,40.0,{rng.uniform(0.3, 0.7):.3f},-1,-1,-1")
            canvas.save(folder / "img1" / f"{frame_number:06d}.jpg", quality=95)
            frames.append(np.asarray(canvas))
        (folder / "gt" / "gt.txt").write_text("\n".join(gt_lines) + "\n")
        (folder / "det" / "det.txt").write_text("\n".join(det_lines) + "\n")
        (folder / "seqinfo.ini").write_text(
            f"[Sequence]\nname=cam{c + 1}\nimDir=img1\nframeRate={fps:g}\nseqLength={num_frames}\n"
            f"imWidth={width}\nimHeight={height}\nimExt=.jpg\n"
        )
        if videos:
            _write_video(staging / f"cam{c + 1}.mp4", frames, fps)
    for entry in staging.iterdir():
        target = out_dir / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)
    staging.rmdir()
    atomic_write_text(manifest, json.dumps({"options": options, "seen": seen}, indent=2))
    return out_dir


def _background(camera, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """The camera's scene: its colour, its clutter rectangles (scaled to the frame) and a floor."""
    from PIL import ImageDraw

    height, width = size
    canvas = Image.new("RGB", (width, height), tuple(int(v) for v in camera.background))
    draw = ImageDraw.Draw(canvas)
    for y0, x0, y1, x1, *colour in camera.clutter:
        xs, ys = sorted((x0 * width, x1 * width)), sorted((y0 * height, y1 * height))
        draw.rectangle([xs[0], ys[0], xs[1], ys[1]], fill=tuple(int(v) for v in colour))
    draw.rectangle([0, int(height * 0.9), width, height], fill=tuple(int(v) // 2 for v in camera.background))
    return canvas


def _write_video(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """Encodes RGB frames as MPEG-4 Part 2 (plays everywhere) with PyAV."""
    from fractions import Fraction

    try:
        import av
    except ImportError as error:
        raise ImportError(
            "writing the generated videos needs PyAV: install hf-lareid's 'video' extra (pip install \".[video]\"), "
            "or pass videos=False for frame folders only."
        ) from error
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(fps).limit_denominator(1000))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "2"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())


__all__ = ["SYNTHETIC_VIDEO_MANIFEST", "generate_synthetic_video"]
