"""The web app's Video tab (`lareid serve --video_index_dir V`): a person crop in, the matching tracklets of an index
built by `lareid video index` out, with camera, time range, score, verdict and thumbnails.

`/video_search` is its Gradio API endpoint; it returns the JSON of [`VideoSearchService.search`].
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Optional

from ..utils.errors import InvalidInputError

MAX_TOP_K = 50


class VideoSearchService:
    """
    A tracklet index with the model that built it, answering the Video tab. Thumbnails are cut from the videos into
    a folder of this service (`thumbnail_dir`), the only new files the page serves.
    """

    def __init__(self, index_dir: str | os.PathLike, model: Optional[str] = None, runtime: str = "auto"):
        from ..embedding.loading import load_model_and_processor
        from ..retrieval import GalleryIndex
        from ..tracking import ReIDBackend
        from ..video.search import check_video_index

        self.index_dir = Path(index_dir)
        self.index = GalleryIndex.load(index_dir)
        check_video_index(self.index, str(index_dir))
        reference = model or self.index.model_reference
        if not reference:
            raise InvalidInputError(f"{index_dir} records no model: give --model.")
        loaded, image_processor = load_model_and_processor(reference)
        flip = bool((self.index.embedding_settings or {}).get("flip", False))
        self.backend = ReIDBackend(loaded, image_processor, runtime=runtime, flip=flip)
        self.thumbnail_dir = Path(tempfile.mkdtemp(prefix="lareid-video-thumbnails-"))
        self._searches = 0

    def search(self, image: Any, top_k: int = 10, query_camera: Optional[int] = None) -> dict:
        """
        `{"hits": [{rank, score, same_person, camera_id, track_id, video, start, end, time_range, thumbnail}],
        "query_camera", "threshold"}`, best first (`thumbnail`: a PNG path, `None` if the video is gone).
        """
        from ..video import search_tracklets, tracklet_thumbnails

        if image is None:
            raise InvalidInputError("upload a person crop first.")
        if not 1 <= int(top_k) <= MAX_TOP_K:
            raise InvalidInputError(f"top_k must be 1..{MAX_TOP_K}, got {top_k}.")
        hits = search_tracklets(self.index, self.backend, image, top_k=int(top_k), query_camera=query_camera)
        self._searches += 1
        answer = []
        for rank, hit in enumerate(hits, start=1):
            t = hit.tracklet
            thumbnails = tracklet_thumbnails(t, count=1)
            thumbnail = None
            if thumbnails:
                thumbnail = str(self.thumbnail_dir / f"search{self._searches}_hit{rank}.png")
                thumbnails[0][1].save(thumbnail)
            answer.append(
                {
                    "rank": rank,
                    "score": hit.score,
                    "same_person": hit.same_person,
                    "camera_id": t.camera_id,
                    "track_id": t.track_id,
                    "video": t.video,
                    "start": t.start_time,
                    "end": t.end_time,
                    "time_range": t.time_range,
                    "thumbnail": thumbnail,
                }
            )
        return {"hits": answer, "query_camera": query_camera, "threshold": self.index.verification_threshold}


def tracklet_caption(hit: dict) -> str:
    """`#1 · 0.912 · camera 2 · 00:00:01-00:00:03 · same person`."""
    parts = [f"#{hit['rank']}", f"{hit['score']:.3f}", f"camera {hit['camera_id']}", hit["time_range"]]
    if hit["same_person"] is not None:
        parts.append("same person" if hit["same_person"] else "different people")
    return " · ".join(parts)


def render_tracklets(answer: dict) -> tuple[list[tuple[str, str]], str]:
    """The thumbnail grid and the status line of a `/video_search` answer."""
    hits = answer["hits"]
    grid = [(hit["thumbnail"], tracklet_caption(hit)) for hit in hits if hit["thumbnail"]]
    status = f"**{len(hits)} tracklet{'s' if len(hits) != 1 else ''}**"
    if answer["query_camera"] is not None:
        status += f", leaving out camera {answer['query_camera']} (the query's camera)"
    lines = [f"- {tracklet_caption(hit)} · track {hit['track_id']} · `{hit['video']}`" for hit in hits]
    return grid, status + "\n" + "\n".join(lines)


def add_video_tab(gr, service: VideoSearchService, answering) -> None:
    """The Video tab and its `/video_search` endpoint, inside the app's `gr.Blocks` (`answering` wraps endpoints)."""

    def video_search(image: dict | None, top_k: float, query_camera: float | None) -> dict:
        """Ranked tracklets of a person crop (camera -1: unknown)."""
        camera = None if query_camera in (None, "") or int(query_camera) < 0 else int(query_camera)
        return service.search(None if not image else image.get("path"), int(top_k), camera)

    with gr.Tab("Video"):
        gr.Markdown(
            f"**{len(service.index)} tracklets** in `{service.index_dir}`: upload a person crop to find where and "
            "when they appear."
        )
        with gr.Row():
            with gr.Column(scale=1):
                query = gr.Image(
                    label="Person crop",
                    type="filepath",
                    sources=["upload", "clipboard"],
                    elem_id="video-query",
                    height=320,
                )
                top_k = gr.Slider(1, MAX_TOP_K, value=10, step=1, label="Top-k", elem_id="video-top-k")
                camera = gr.Number(
                    -1,
                    precision=0,
                    label="Query camera (-1: unknown)",
                    info="its tracklets are left out",
                    elem_id="video-camera",
                )
                button = gr.Button("Find in videos", variant="primary", elem_id="video-button")
            with gr.Column(scale=3):
                status = gr.Markdown(elem_id="video-status")
                grid = gr.Gallery(label="Tracklets", columns=5, object_fit="contain", elem_id="video-hits")
                with gr.Accordion("API answer (/video_search)", open=False):
                    answer = gr.JSON(show_label=False, elem_id="video-json")
    button.click(
        answering(video_search), [query, top_k, camera], answer, api_name="video_search", preprocess=False
    ).success(render_tracklets, answer, [grid, status], api_visibility="private")


__all__ = ["VideoSearchService", "add_video_tab", "render_tracklets", "tracklet_caption"]
