"""The web app of `lareid serve` (and `spaces/app.py`): a Gradio page over a [`ReIDService`].

Two tabs, Search and Compare; every action is also a Gradio API endpoint that returns the JSON of
`web/service.py` (`/search`, `/compare`, `/attention`, `/gallery_image`), so the page is a view of those answers:
a button calls the endpoint into a JSON component, and a private step draws the grid or the verdict from it.

Nothing leaves the machine: Gradio's analytics and version check are off, the theme's fonts are the ones Gradio
serves itself, and no share link is made.
"""

import functools
import os
from typing import Any

from .service import DIFFERENT_PEOPLE, NO_THRESHOLD, SAME_PERSON, UNKNOWN, ReIDService, WebAppError

PICKER_SIZE = 48  # gallery thumbnails offered as queries
MAX_TOP_K = 50
MAX_UPLOAD = "25mb"
CSS = "#hits .caption-label { white-space: normal; text-overflow: clip; }"  # whole captions: score, ids, verdict


def import_gradio():
    """`gradio`, imported with its analytics and version check off; `MissingExtraError` naming `serve` if missing."""
    from ..utils.extras import require_extra

    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # Gradio reads it when a Blocks is built and when it launches
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    return require_extra("gradio", "serve", "The web app's pages")


def describe_threshold(threshold: float | None, calibration: dict | None) -> str:
    """One sentence on the same-person threshold and the false-match rate it was calibrated at."""
    if threshold is None:
        return f"**{NO_THRESHOLD}**: hits and comparisons get a similarity but no same-person verdict."
    text = f"Same person when cosine similarity > **{threshold:.3f}**"
    if not calibration:
        return text + " (set by hand: no calibrated false-match rate)."
    return (
        f"{text}, calibrated at a false-match rate of **{calibration['false_match_rate']:.2%}** (target "
        f"{calibration['target_false_match_rate']:.2%}; true-match rate {calibration['true_match_rate']:.1%}) on "
        f"{calibration.get('calibrated_on') or 'unnamed data'}."
    )


def hit_caption(hit: dict) -> str:
    """`#1 · 0.987 · person 12 · camera 2 · same person` (the parts the index knows)."""
    parts = [f"#{hit['rank']}", f"{hit['score']:.3f}"]
    if hit["person_id"] is not None:
        parts.append(f"person {hit['person_id']}")
    if hit["camera_id"] is not None:
        parts.append(f"camera {hit['camera_id']}")
    if hit["same_person"] is not None:
        parts.append(SAME_PERSON if hit["same_person"] else DIFFERENT_PEOPLE)
    return " · ".join(parts)


def render_hits(answer: dict) -> tuple[list[tuple[str, str]], str]:
    """The grid (image, caption) and the status line of a `/search` answer."""
    hits = answer["hits"]
    grid = [(hit["file"], hit_caption(hit)) for hit in hits if hit["file"]]
    status = f"**{len(hits)} hit{'s' if len(hits) != 1 else ''}**"
    if answer["query_camera"] != UNKNOWN:
        whose = f"person {answer['query_person']}'s images" if answer["query_person"] != UNKNOWN else "every image"
        status += f", leaving out {whose} from camera {answer['query_camera']} (the query's camera)"
    if hits and not grid:
        status += " (this index stores no image paths, so there are no pictures: see the JSON)"
    return grid, status + ". " + describe_threshold(answer["threshold"], answer["calibration"])


def render_verdict(answer: dict) -> str:
    """The Compare tab's verdict line from a `/compare` answer."""
    cosine = f"cosine similarity **{answer['cosine']:.3f}**"
    if answer["verdict"] == NO_THRESHOLD:
        return f"## {NO_THRESHOLD}\n{cosine}; this index has no same-person threshold (`lareid index --calibrate_on`)."
    relation = ">" if answer["verdict"] == SAME_PERSON else "<="
    rate = (
        f", calibrated at a false-match rate of {answer['false_match_rate']:.2%} "
        f"(target {answer['target_false_match_rate']:.2%}) on {answer['calibrated_on']}"
        if answer["false_match_rate"] is not None
        else " (set by hand: no calibrated false-match rate)"
    )
    return f"## {answer['verdict']}\n{cosine} {relation} threshold {answer['threshold']:.3f}{rate}."


def _answering(job):
    """Runs `job`, turning a bad input into a Gradio error the page shows (its message only, no traceback)."""
    import gradio

    @functools.wraps(job)  # keeps the signature: Gradio documents the endpoint's parameters from it
    def endpoint(*args):
        try:
            return job(*args)
        except (WebAppError, ValueError, OSError) as error:
            raise gradio.Error(str(error).strip().splitlines()[0], duration=None, print_exception=False) from None

    return endpoint


def _image_upload(gr, label: str, elem_id: str):
    """An image box the user uploads or pastes into; its value is the file's path."""
    return gr.Image(label=label, type="filepath", sources=["upload", "clipboard"], elem_id=elem_id, height=320)


def _id_box(gr, what: str, info: str):
    """The query's camera or person id box (`what`), -1 (unknown) until the user or a gallery pick sets it."""
    return gr.Number(UNKNOWN, precision=0, label=f"Query {what} (-1: unknown)", info=info, elem_id=f"query-{what}")


def build_app(service: ReIDService, video_service=None):
    """The Gradio Blocks of the web app over `service` (not launched); a Video tab over `video_service` if given (a
    [`hf_lareid.web.video_tab.VideoSearchService`])."""
    gr = import_gradio()
    summary = service.summary()
    picker_rows = service.gallery_sample(PICKER_SIZE)

    # The image endpoints take the upload as Gradio sends it (`preprocess=False`), so that a damaged file reaches
    # the service's loader and its one-line message, not Gradio's "could not preprocess" error.
    def search(image: dict | None, top_k: float, query_camera: float | None, query_person: float | None) -> dict:
        """Ranked gallery hits of a query image (camera/person -1: unknown)."""
        return service.search(_upload(image), int(top_k), _id(query_camera), _id(query_person))

    def compare(image_a: dict | None, image_b: dict | None) -> dict:
        """Cosine similarity and same-person verdict of two images."""
        return service.compare(_upload(image_a), _upload(image_b))

    def attention(image: dict | None) -> str:
        """A PNG of the image's attention rollout with its row parts."""
        return service.attention(_upload(image))

    def gallery_image(row: int) -> dict:
        """Path, person id and camera id of gallery image `row`."""
        return service.gallery_image(row)

    def pick(selected: gr.SelectData) -> tuple[str | None, int, int]:
        picked = service.gallery_image(picker_rows[selected.index])
        return picked["file"], picked["camera_id"], picked["person_id"]

    with gr.Blocks(title="hf-lareid: person re-identification", analytics_enabled=False) as app:
        gr.Markdown(
            f"# Person re-identification (LA-Transformer)\n**{summary['size']} gallery images** in "
            f"`{summary['index_dir']}`, model `{summary['model']}`. "
            + describe_threshold(summary["threshold"], summary["calibration"])
        )
        with gr.Tab("Search"):
            with gr.Row():
                with gr.Column(scale=1):
                    query = _image_upload(gr, "Query image", "query-image")
                    top_k = gr.Slider(1, MAX_TOP_K, value=10, step=1, label="Top-k", elem_id="top-k")
                    with gr.Row():
                        query_camera = _id_box(gr, "camera", "its gallery images are left out")
                        query_person = _id_box(gr, "person", "set by a gallery pick")
                    search_button = gr.Button("Search", variant="primary", elem_id="search-button")
                    with gr.Accordion("Pick a query from the gallery", open=False):
                        picker = gr.Gallery(
                            [(service.gallery_path(row), f"{row}") for row in picker_rows],
                            columns=6,
                            allow_preview=False,
                            show_label=False,
                            elem_id="gallery-picker",
                        )
                with gr.Column(scale=3):
                    search_status = gr.Markdown(elem_id="search-status")
                    hits = gr.Gallery(label="Gallery hits", columns=5, object_fit="contain", elem_id="hits")
                    with gr.Accordion("Attention rollout of the query, with its row parts", open=False):
                        attention_button = gr.Button("Draw the attention rollout", elem_id="attention-button")
                        attention_picture = gr.Image(
                            type="filepath", interactive=False, show_label=False, elem_id="attention"
                        )
                    with gr.Accordion("API answer (/search)", open=False):
                        search_answer = gr.JSON(show_label=False, elem_id="search-json")
        with gr.Tab("Compare"):
            with gr.Row():
                image_a = _image_upload(gr, "First person", "compare-a")
                image_b = _image_upload(gr, "Second person", "compare-b")
            compare_button = gr.Button("Compare", variant="primary", elem_id="compare-button")
            verdict = gr.Markdown(elem_id="compare-verdict")
            with gr.Accordion("API answer (/compare)", open=False):
                compare_answer = gr.JSON(show_label=False, elem_id="compare-json")
        if video_service is not None:
            from .video_tab import add_video_tab

            add_video_tab(gr, video_service, _answering)

        search_button.click(
            _answering(search),
            [query, top_k, query_camera, query_person],
            search_answer,
            api_name="search",
            preprocess=False,
        ).success(render_hits, search_answer, [hits, search_status], api_visibility="private")
        compare_button.click(
            _answering(compare), [image_a, image_b], compare_answer, api_name="compare", preprocess=False
        ).success(render_verdict, compare_answer, verdict, api_visibility="private")
        attention_button.click(_answering(attention), query, attention_picture, api_name="attention", preprocess=False)
        gr.api(_answering(gallery_image), api_name="gallery_image")
        picker.select(pick, None, [query, query_camera, query_person], api_visibility="private")
        # A new upload is not from the gallery: its camera and person are unknown until the user names them.
        query.upload(lambda: (UNKNOWN, UNKNOWN), None, [query_camera, query_person], api_visibility="private")
    return app


def launch_app(service: ReIDService, host: str = "127.0.0.1", port: int = 7860, block: bool = True, video_service=None):
    """Serves the app on `host:port` (no share link); blocks until interrupted unless `block=False`."""
    app = build_app(service, video_service)
    video_folders = [] if video_service is None else [str(video_service.thumbnail_dir)]
    app.queue(default_concurrency_limit=1)  # one model, one embedding at a time
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        quiet=True,  # `lareid serve` prints the address; Gradio's lines would add a share=True hint
        show_error=True,
        allowed_paths=service.gallery_folders() + video_folders,
        max_file_size=MAX_UPLOAD,
        prevent_thread_lock=not block,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        enable_monitoring=False,
        footer_links=["api"],
        css=CSS,
    )
    return app


def _id(value: Any) -> int:
    return UNKNOWN if value is None or value == "" else int(value)


def _upload(payload: dict | None) -> str | None:
    """The file of an image upload as Gradio sends it unprocessed (a FileData dict), or `None`."""
    return None if not payload else payload.get("path")
