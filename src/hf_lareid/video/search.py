"""Searching a gallery index of tracklets with a person crop: ranked tracklets with their times, and pictures."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Union

from PIL import Image, ImageDraw

from ..utils.images import load_rgb
from .errors import VideoInputError
from .indexing import VIDEO_INDEX_DATASET
from .reader import open_video
from .tracklets import Tracklet


@dataclass
class TrackletHit:
    """One search result: the tracklet, its cosine similarity to the query, and the calibrated verdict (`None`
    when the index has no threshold)."""

    tracklet: Tracklet
    score: float
    same_person: Optional[bool]

    def describe(self) -> str:
        verdict = {True: "same person", False: "different", None: "no threshold"}[self.same_person]
        t = self.tracklet
        return f"{t.time_range}  camera {t.camera_id}  track {t.track_id}  score {self.score:.4f}  {verdict}  {t.video}"


def check_video_index(index: Any, where: str) -> None:
    """[`VideoInputError`] unless `index` holds tracklets (made by `lareid video index`)."""
    if index.dataset != VIDEO_INDEX_DATASET:
        raise VideoInputError(
            f"{where} is an index of images, not of video tracklets: use `lareid search`, or build one with "
            "`lareid video index`."
        )


def search_tracklets(
    index: Any, backend: Any, query: Any, top_k: int = 10, query_camera: Optional[int] = None
) -> list[TrackletHit]:
    """
    The `top_k` tracklets most similar to a person crop, best first; those of `query_camera` left out when given.

    Args:
        index: a gallery index built by [`index_videos`].
        backend: the [`hf_lareid.tracking.ReIDBackend`] of the model that built it (checked by fingerprint).
        query: a person crop (PIL image, path, array).
        top_k: hits to return.
        query_camera: the query's camera.
    """
    from ..retrieval.camera_filter import search_other_cameras

    embedding = backend.embed_crops([load_rgb(query)])
    result = search_other_cameras(index, embedding, top_k, [query_camera], None, provenance=backend.encoder.provenance)
    hits = []
    for rank, position in enumerate(result.indices[0]):
        if position < 0:
            continue
        tracklet = Tracklet.from_key(result.paths[0][rank], int(result.camera_ids[0][rank]))
        verdict = None if result.same_person is None else bool(result.same_person[0][rank])
        hits.append(TrackletHit(tracklet, float(result.scores[0][rank]), verdict))
    return hits


def tracklet_thumbnails(tracklet: Tracklet, count: int = 3) -> list[tuple[int, Image.Image]]:
    """`[(frame, crop)]` of up to `count` sampled boxes of a tracklet, read from its video (`[]` if it is gone)."""
    chosen = (
        tracklet.samples[:: max(1, len(tracklet.samples) // count)][:count]
        if count < len(tracklet.samples)
        else tracklet.samples
    )
    boxes = dict(chosen)
    try:
        source = open_video(tracklet.video, tracklet.fps)
        frames = dict(source.frames(boxes))
    except VideoInputError:
        return []
    return [(f, Image.fromarray(frames[f][y1:y2, x1:x2])) for f, (x1, y1, x2, y2) in chosen if f in frames]


def draw_contact_sheet(
    query: Any, hits: list[TrackletHit], path: Union[str, os.PathLike], thumbnails: int = 3, height: int = 128
) -> str:
    """
    Writes a contact sheet: the query on the first row, then per hit its rank, score, verdict, camera and time range
    with a strip of `thumbnails` crops (each labelled with its time). Returns the path.
    """
    query_image = load_rgb(query)
    rows = [("query", [("", query_image)])]
    for rank, hit in enumerate(hits, start=1):
        t = hit.tracklet
        verdict = {True: "same", False: "different", None: ""}[hit.same_person]
        title = f"#{rank} {hit.score:.3f} {verdict}  cam {t.camera_id}  {t.time_range}"
        strip = [(_seconds((f - 1) / t.fps), crop) for f, crop in tracklet_thumbnails(t, thumbnails)]
        rows.append((title, strip))
    cell_width = max(
        [max(1, round(image.width * height / max(1, image.height))) for _, strip in rows for _, image in strip] or [64]
    )
    width = max(360, (cell_width + 8) * max(len(strip) for _, strip in rows) + 8)
    row_height = height + 34
    sheet = Image.new("RGB", (width, row_height * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (title, strip) in enumerate(rows):
        top = row * row_height
        draw.text((8, top + 4), title, fill="black")
        for column, (label, image) in enumerate(strip):
            resized = image.resize((max(1, round(image.width * height / max(1, image.height))), height))
            left = 8 + column * (cell_width + 8)
            sheet.paste(resized, (left, top + 18))
            if label:
                draw.text((left, top + 18 + height), label, fill="black")
    sheet.save(path)
    return str(path)


def _seconds(value: float) -> str:
    return f"{value:.1f}s"


__all__ = ["TrackletHit", "check_video_index", "draw_contact_sheet", "search_tracklets", "tracklet_thumbnails"]
