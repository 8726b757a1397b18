"""A generated re-ID set in the Market-1501 layout, so that demos, tests and training need no download.

Each identity is a drawn figure (head, hair, torso, arms, legs, shoes) with its own clothing colours, a pattern on the
top (plain, stripes, checks, dots) and the trousers (plain, stripes), a carried item (none, bag, backpack), sleeve
length and body proportions. Colours come from one small shared palette, so many identities share a top or trouser
colour and colour alone does not tell them apart. Each camera has its own viewpoint (front, back, side; mirrored or
not), scale, crop offset, background scene, lighting and blur; each image adds a walking pose and small jitter.
Everything is drawn from `numpy.random.default_rng` seeded by ``(seed, person_id, camera, image)``: the same
arguments give the same files, and two populations with disjoint id ranges (`first_id`) look different.

Splits follow the Market-1501 protocol: the first `num_train_ids` identities go to ``bounding_box_train``; for every
other identity the first image of each camera goes to ``query`` and the rest to ``bounding_box_test``, so each
query has gallery images of the same person from other cameras. Optional distractors (person id 0) join the gallery.

Example:
    >>> from hf_lareid.data import generate_synthetic_reid, load_reid_dataset
    >>> root = generate_synthetic_reid("synthetic", num_ids=20, num_cameras=3, images_per_camera=2)  # doctest: +SKIP
    >>> load_reid_dataset("market1501", data_dir=root)["query"].num_rows  # doctest: +SKIP
    30
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm.auto import tqdm

from ..utils.errors import InvalidInputError
from ..utils.io import atomic_write_text
from .market1501 import MARKET1501_FOLDERS

logger = logging.getLogger(__name__)

__all__ = ["SYNTHETIC_MANIFEST", "SyntheticReIDConfig", "generate_synthetic_reid"]

SYNTHETIC_MANIFEST = "synthetic_reid.json"
"""File written into the output folder last; it records the options, so an identical call reuses the folder."""

# A small shared palette: identities draw several colours from it, so single colours repeat across identities.
_PALETTE = np.array(
    [
        (200, 30, 30),
        (30, 60, 170),
        (30, 130, 60),
        (230, 200, 40),
        (240, 240, 240),
        (25, 25, 25),
        (120, 120, 125),
        (110, 60, 30),
        (150, 50, 150),
        (240, 130, 30),
        (110, 180, 220),
        (200, 170, 130),
    ],
    dtype=np.uint8,
)
_SKIN = np.array([(255, 220, 180), (225, 180, 140), (180, 130, 90), (120, 80, 50), (90, 60, 40)], dtype=np.uint8)
_HAIR = np.array([(20, 15, 10), (90, 60, 30), (200, 170, 90), (130, 130, 130), (150, 60, 20)], dtype=np.uint8)
_TOP_PATTERNS = ("plain", "stripes", "checks", "dots")
_BOTTOM_PATTERNS = ("plain", "stripes")
_ITEMS = ("none", "bag", "backpack")
_VIEWS = ("front", "back", "side")


@dataclass(frozen=True)
class SyntheticReIDConfig:
    """Options of :func:`generate_synthetic_reid` (all sizes are (height, width))."""

    num_ids: int = 100
    num_cameras: int = 4
    images_per_camera: int = 4
    image_size: tuple[int, int] = (128, 64)
    seed: int = 0
    first_id: int = 1
    num_train_ids: int | None = None
    num_distractors: int = 0

    def validate(self) -> None:
        """Raise `ValueError` naming the first bad option."""
        if self.num_ids < 2:
            raise InvalidInputError(f"num_ids must be >= 2 (some to train, some to query), got {self.num_ids}.")
        if self.num_cameras < 2:
            raise InvalidInputError(
                f"num_cameras must be >= 2 so that queries have other-camera matches, got {self.num_cameras}."
            )
        if self.images_per_camera < 2:
            raise InvalidInputError(
                f"images_per_camera must be >= 2 (one query and one gallery image per camera), got "
                f"{self.images_per_camera}."
            )
        if len(self.image_size) != 2 or min(self.image_size) < 16:
            raise InvalidInputError(f"image_size must be (height, width) with both >= 16, got {self.image_size}.")
        if self.first_id < 1 or self.seed < 0 or self.num_distractors < 0:
            raise InvalidInputError("first_id must be >= 1, seed >= 0 and num_distractors >= 0.")
        if not 0 <= self.train_ids_count < self.num_ids:
            raise InvalidInputError(
                f"num_train_ids must be in [0, num_ids), got {self.num_train_ids} for {self.num_ids} ids."
            )

    @property
    def train_ids_count(self) -> int:
        """Identities in the train split (default: half of `num_ids`)."""
        return self.num_ids // 2 if self.num_train_ids is None else self.num_train_ids


@dataclass(frozen=True)
class _Identity:
    skin: np.ndarray
    hair: np.ndarray
    top: np.ndarray
    top_second: np.ndarray
    bottom: np.ndarray
    bottom_second: np.ndarray
    shoes: np.ndarray
    item_colour: np.ndarray
    top_pattern: str
    bottom_pattern: str
    item: str
    pattern_period: int
    height: float  # share of the frame height
    width: float  # shoulder width factor
    leg_share: float  # share of the body height taken by the legs
    head_share: float
    long_sleeves: bool
    long_hair: bool


@dataclass(frozen=True)
class _Camera:
    view: str
    mirrored: bool
    scale: float
    offset: tuple[float, float]  # (dy, dx) as shares of (height, width)
    background: np.ndarray
    clutter: np.ndarray  # (n, 7): y0, x0, y1, x1 as shares, then an RGB colour
    light: np.ndarray  # per-channel gain
    blur: float


def _pick(rng: np.random.Generator, choices: np.ndarray | Sequence) -> object:
    return choices[rng.integers(len(choices))]


def _make_identity(rng: np.random.Generator) -> _Identity:
    colours = rng.choice(len(_PALETTE), size=5, replace=False)
    return _Identity(
        skin=_pick(rng, _SKIN),
        hair=_pick(rng, _HAIR),
        top=_PALETTE[colours[0]],
        top_second=_PALETTE[colours[1]],
        bottom=_PALETTE[colours[2]],
        bottom_second=_PALETTE[colours[3]],
        shoes=_PALETTE[rng.choice([5, 7, 4, 6])],
        item_colour=_PALETTE[colours[4]],
        top_pattern=str(_pick(rng, _TOP_PATTERNS)),
        bottom_pattern=str(_pick(rng, _BOTTOM_PATTERNS)),
        item=str(_pick(rng, _ITEMS)),
        pattern_period=int(rng.integers(3, 7)),
        height=float(rng.uniform(0.78, 0.95)),
        width=float(rng.uniform(0.8, 1.2)),
        leg_share=float(rng.uniform(0.42, 0.52)),
        head_share=float(rng.uniform(0.11, 0.15)),
        long_sleeves=bool(rng.random() < 0.5),
        long_hair=bool(rng.random() < 0.4),
    )


def _make_camera(rng: np.random.Generator, camera_index: int) -> _Camera:
    num_clutter = int(rng.integers(3, 9))
    clutter = np.column_stack([rng.uniform(0, 1, (num_clutter, 4)), rng.integers(0, 256, (num_clutter, 3))])
    return _Camera(
        view=_VIEWS[camera_index % len(_VIEWS)] if camera_index < len(_VIEWS) else str(_pick(rng, _VIEWS)),
        mirrored=bool(rng.random() < 0.5),
        scale=float(rng.uniform(0.8, 1.05)),
        offset=(float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.1, 0.1))),
        background=rng.integers(40, 220, 3).astype(np.uint8),
        clutter=clutter,
        light=rng.uniform(0.65, 1.25, 3),
        blur=float(rng.uniform(0.0, 1.2)),
    )


@functools.lru_cache(maxsize=64)
def _pattern_mask(size: tuple[int, int], pattern: str, period: int) -> np.ndarray:
    """(H, W) bool mask of where a `pattern` shows its second colour; cached, as identities reuse few patterns."""
    rows, cols = np.mgrid[0 : size[0], 0 : size[1]]
    if pattern == "stripes":
        return (rows // period) % 2 == 1
    if pattern == "checks":
        return (rows // period + cols // period) % 2 == 1
    if pattern == "dots":
        return ((rows % (2 * period) - period) ** 2 + (cols % (2 * period) - period) ** 2) < (period * 0.6) ** 2
    return np.zeros(size, dtype=bool)


def _texture(size: tuple[int, int], pattern: str, first: np.ndarray, second: np.ndarray, period: int) -> Image.Image:
    """An RGB texture of `size` (height, width): `first` colour with a `pattern` in `second`."""
    if pattern == "plain":
        return Image.new("RGB", (size[1], size[0]), tuple(int(v) for v in first))
    mask = _pattern_mask(size, pattern, period)
    return Image.fromarray(np.where(mask[..., None], second, first).astype(np.uint8))


def _limb(draw: ImageDraw.ImageDraw, start, angle: float, length: float, width: float, fill) -> tuple[float, float]:
    end = (start[0] + length * math.sin(angle), start[1] + length * math.cos(angle))
    draw.line([start, end], fill=fill, width=max(1, round(width)))
    return end


def _draw_image(identity: _Identity, camera: _Camera, rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    height, width = size
    # Background: the camera's scene (colour, fixed clutter) with a floor and one moving object per image.
    canvas = Image.new("RGB", (width, height), tuple(int(v) for v in camera.background))
    draw = ImageDraw.Draw(canvas)
    for y0, x0, y1, x1, *colour in camera.clutter:
        box = sorted((x0 * width, x1 * width)), sorted((y0 * height, y1 * height))
        draw.rectangle([box[0][0], box[1][0], box[0][1], box[1][1]], fill=tuple(int(v) for v in colour))
    draw.rectangle([0, int(height * 0.85), width, height], fill=tuple(int(v) // 2 for v in camera.background))
    moving = rng.integers(0, 256, 3)
    mx, my = rng.uniform(0, width), rng.uniform(0, height)
    draw.ellipse([mx - 6, my - 6, mx + 6, my + 6], fill=tuple(int(v) for v in moving))

    # Figure geometry for this image.
    scale = camera.scale * rng.uniform(0.95, 1.05)
    body = height * identity.height * scale
    top = (height - body) / 2 + (camera.offset[0] + rng.uniform(-0.02, 0.02)) * height
    centre = width / 2 + (camera.offset[1] + rng.uniform(-0.04, 0.04)) * width
    head_radius = body * identity.head_share / 2
    shoulder_y = top + 2 * head_radius
    hip_y = top + body * (1 - identity.leg_share)
    half_torso = width * 0.19 * identity.width * scale * (0.7 if camera.view == "side" else 1.0)
    limb_width = max(2.0, half_torso * 0.45)
    phase = rng.uniform(0, 2 * math.pi)
    swing = 0.35 * math.sin(phase)

    # Legs (drawn on a mask, then filled with the trouser texture).
    leg_mask = Image.new("L", (width, height), 0)
    leg_draw = ImageDraw.Draw(leg_mask)
    leg_length = top + body - hip_y
    feet = []
    for side, direction in ((-1, 1), (1, -1)):
        hip = (centre + side * half_torso * (0.2 if camera.view == "side" else 0.5), hip_y)
        feet.append(_limb(leg_draw, hip, direction * swing, leg_length, limb_width * 1.2, 255))
    canvas.paste(
        _texture(size, identity.bottom_pattern, identity.bottom, identity.bottom_second, identity.pattern_period),
        mask=leg_mask,
    )
    for foot in feet:
        draw.ellipse(
            [foot[0] - limb_width, foot[1] - limb_width / 2, foot[0] + limb_width, foot[1] + limb_width / 2],
            fill=tuple(int(v) for v in identity.shoes),
        )

    # Backpack behind the torso when seen from the front or side.
    if identity.item == "backpack" and camera.view != "back":
        dx = -half_torso * 0.9 if camera.view == "side" else 0
        draw.rectangle(
            [centre + dx - half_torso * 0.8, shoulder_y + 2, centre + dx + half_torso * 0.8, hip_y - 2],
            fill=tuple(int(v) for v in identity.item_colour),
        )

    # Torso with the top's pattern, and the arms (sleeves in the top colour, hands in skin).
    torso_mask = Image.new("L", (width, height), 0)
    torso_draw = ImageDraw.Draw(torso_mask)
    torso_draw.polygon(
        [
            (centre - half_torso, shoulder_y),
            (centre + half_torso, shoulder_y),
            (centre + half_torso * 0.8, hip_y + 2),
            (centre - half_torso * 0.8, hip_y + 2),
        ],
        fill=255,
    )
    arm_length = (hip_y - shoulder_y) * 1.05
    sleeve_length = arm_length if identity.long_sleeves else arm_length * 0.4
    arms = ((1,),) if camera.view == "side" else ((-1,), (1,))
    for (side,) in arms:
        shoulder = (centre + side * half_torso, shoulder_y + limb_width / 2)
        angle = side * 0.15 - side * swing if camera.view != "side" else swing
        _limb(draw, shoulder, angle, arm_length, limb_width, tuple(int(v) for v in identity.skin))
        _limb(torso_draw, shoulder, angle, sleeve_length, limb_width + 1, 255)
    canvas.paste(
        _texture(size, identity.top_pattern, identity.top, identity.top_second, identity.pattern_period),
        mask=torso_mask,
    )

    # Carried items in front of the body.
    item_fill = tuple(int(v) for v in identity.item_colour)
    if identity.item == "backpack" and camera.view == "back":
        box = [centre - half_torso * 0.75, shoulder_y + 3, centre + half_torso * 0.75, hip_y - 3]
        draw.rectangle(box, fill=item_fill)
    elif identity.item == "backpack" and camera.view == "front":
        for side in (-1, 1):
            x = centre + side * half_torso * 0.5
            draw.line([(x, shoulder_y), (x, hip_y - 4)], fill=item_fill, width=2)
    elif identity.item == "bag":
        draw.line([(centre - half_torso, shoulder_y), (centre + half_torso * 1.1, hip_y)], fill=item_fill, width=2)
        draw.rectangle([centre + half_torso * 0.8, hip_y - 4, centre + half_torso * 1.6, hip_y + 10], fill=item_fill)

    # Head: face (front), hair (all views, covering it from the back).
    head_centre = (centre, top + head_radius)
    head_box = [head_centre[0] - head_radius, top, head_centre[0] + head_radius, top + 2 * head_radius]
    hair_fill = tuple(int(v) for v in identity.hair)
    if identity.long_hair:
        draw.rectangle([head_box[0], head_centre[1], head_box[2], shoulder_y + head_radius], fill=hair_fill)
    draw.ellipse(head_box, fill=hair_fill if camera.view == "back" else tuple(int(v) for v in identity.skin))
    if camera.view != "back":
        draw.chord(head_box, 180, 360, fill=hair_fill)

    # Camera effects: mirroring, lighting, noise, blur.
    if camera.mirrored:
        canvas = canvas.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    pixels = np.asarray(canvas, dtype=np.float32) * (camera.light * rng.uniform(0.9, 1.1))
    pixels += rng.normal(0.0, 4.0, pixels.shape)
    canvas = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    blur = camera.blur + rng.uniform(0.0, 0.4)
    return canvas.filter(ImageFilter.GaussianBlur(blur)) if blur > 0.3 else canvas


def _check_output_folder(out_dir: Path, config: SyntheticReIDConfig) -> bool:
    """True if `out_dir` already holds this generation; raises if it holds something else."""
    manifest = out_dir / SYNTHETIC_MANIFEST
    if manifest.is_file():
        try:
            previous = json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError):
            previous = None
        return previous == json.loads(json.dumps(asdict(config)))
    if out_dir.exists() and any(not path.name.startswith(".") for path in out_dir.iterdir()):
        raise FileExistsError(
            f"{out_dir} is not empty and holds no {SYNTHETIC_MANIFEST}, so it was not made by generate_synthetic_reid. "
            "Pass a new or empty folder as out_dir / data_dir."
        )
    return False


def generate_synthetic_reid(
    out_dir: str | os.PathLike,
    num_ids: int = 100,
    num_cameras: int = 4,
    images_per_camera: int = 4,
    image_size: tuple[int, int] = (128, 64),
    seed: int = 0,
    first_id: int = 1,
    num_train_ids: int | None = None,
    num_distractors: int = 0,
    overwrite: bool = False,
) -> Path:
    """Draw a re-ID set into `out_dir` in the Market-1501 layout and return `out_dir` as an absolute `Path`.

    Args:
        out_dir: folder to write (created; must be new, empty, or an earlier output of this function).
        num_ids: identities, numbered `first_id` .. `first_id + num_ids - 1`.
        num_cameras: cameras (>= 2); each has its own viewpoint, scale, crop, scene, lighting and blur.
        images_per_camera: images per identity and camera (>= 2).
        image_size: (height, width) of every image.
        seed: appearance seed; identities and cameras are drawn from `(seed, id)` and `(seed, camera)`.
        first_id: first person id; give populations disjoint id ranges to merge them.
        num_train_ids: identities in ``bounding_box_train`` (default: half of `num_ids`); the rest are query/gallery.
        num_distractors: extra gallery images of unrelated people with person id 0.
        overwrite: regenerate even if `out_dir` already holds the same generation. A folder that this function did
            not write (no manifest, not empty) is refused all the same.

    Writes ``num_ids * num_cameras * images_per_camera + num_distractors`` JPEG files, several hundred per second on one CPU core.
    An identical earlier call's output (recorded in :data:`SYNTHETIC_MANIFEST`) is reused as is.

    Example:
        >>> root = generate_synthetic_reid("synthetic", num_ids=10, num_cameras=2)  # doctest: +SKIP
        >>> len(list((root / "query").glob("*.jpg")))  # doctest: +SKIP
        10
    """
    config = SyntheticReIDConfig(
        num_ids=num_ids,
        num_cameras=num_cameras,
        images_per_camera=images_per_camera,
        image_size=tuple(int(v) for v in image_size),
        seed=seed,
        first_id=first_id,
        num_train_ids=num_train_ids,
        num_distractors=num_distractors,
    )
    config.validate()
    out_dir = Path(out_dir).expanduser().absolute()
    same = _check_output_folder(out_dir, config)  # refuses a folder this function did not write, even with overwrite
    if same and not overwrite:
        logger.info("Reusing the generated re-ID set in %s", out_dir)
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    for leftover in out_dir.glob(".synthetic-*"):
        shutil.rmtree(leftover, ignore_errors=True)

    # Write into a hidden temporary folder and move it into place, so an interrupted run leaves no partial set.
    staging = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=out_dir))
    for folder in MARKET1501_FOLDERS.values():
        (staging / folder).mkdir()
    cameras = [_make_camera(np.random.default_rng([seed, 1_000_000 + c]), c) for c in range(num_cameras)]
    person_ids = range(first_id, first_id + num_ids)
    num_images = num_ids * num_cameras * images_per_camera + num_distractors
    with tqdm(total=num_images, desc="Drawing re-ID images", unit="img", disable=num_images < 2000) as progress:
        for index, person_id in enumerate(person_ids):
            identity = _make_identity(np.random.default_rng([seed, person_id]))
            is_train = index < config.train_ids_count
            for camera_index, camera in enumerate(cameras):
                for shot in range(images_per_camera):
                    rng = np.random.default_rng([seed, person_id, camera_index, shot])
                    image = _draw_image(identity, camera, rng, config.image_size)
                    folder = "train" if is_train else ("query" if shot == 0 else "gallery")
                    name = f"{person_id:04d}_c{camera_index + 1}s1_{shot * 25:06d}_{shot + 1:02d}.jpg"
                    image.save(staging / MARKET1501_FOLDERS[folder] / name, quality=92)
                    progress.update()
        for shot in range(num_distractors):
            rng = np.random.default_rng([seed, 2_000_000 + shot])
            camera_index = shot % num_cameras
            image = _draw_image(_make_identity(rng), cameras[camera_index], rng, config.image_size)
            image.save(staging / MARKET1501_FOLDERS["gallery"] / f"0000_c{camera_index + 1}s1_{shot:06d}_01.jpg")
            progress.update()

    # The manifest keeps marking the folder as ours while its image folders are swapped, but no longer matches any
    # generation, so an interrupted swap is regenerated next time rather than reused or refused.
    atomic_write_text(out_dir / SYNTHETIC_MANIFEST, json.dumps({"status": "writing"}))
    for folder in MARKET1501_FOLDERS.values():
        shutil.rmtree(out_dir / folder, ignore_errors=True)
        os.replace(staging / folder, out_dir / folder)
    staging.rmdir()
    atomic_write_text(out_dir / SYNTHETIC_MANIFEST, json.dumps(asdict(config), indent=2))
    logger.info("Wrote %d generated re-ID images to %s", num_images, out_dir)
    return out_dir
