"""Pictures from arrays: ranked lists, CMC curves, attention rollout overlays, training curves (the `plots` extra).

They know no model and no Trainer (`hf_lareid.analysis.model_pictures` feeds them from one). Every function draws with
matplotlib's object API on the Agg canvas (no pyplot, no global backend switch), writes one PNG atomically
(temporary file, then rename; missing folders are created) and returns its path.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..utils.extras import require_extra
from ..utils.images import ImageLike, load_rgb
from ..utils.io import atomic_path

require_extra("matplotlib", "plots", "The pictures (lareid demo, lareid search --picture)")
from matplotlib.backends.backend_agg import RendererAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402

from ..utils.errors import InvalidInputError  # noqa: E402

logger = logging.getLogger(__name__)

# Frames of ranked gallery images. Identity colours only where the query's identity is known; otherwise the
# same-person verdict of the index's threshold.
RIGHT_COLOR = (0, 200, 0)  # RGB border of a gallery image of the query's identity
WRONG_COLOR = (230, 0, 0)  # RGB border of a gallery image of another identity
SAME_PERSON_COLOR = (30, 110, 240)  # query identity unknown: similarity above the threshold (same person)
# Query identity unknown: below the threshold, or no threshold (not a pure gray, which antialiased text produces).
OTHER_PERSON_COLOR = (140, 140, 160)
QUERY_COLOR = (0, 0, 0)  # border of the query image
BORDER_WIDTH = 4  # pixels
TILE_SIZE = (128, 64)  # (height, width) of one ranked-list image, inside its border
LABEL_FONT_SIZE = 7  # points
_DPI = 100


def _save_figure(figure: Figure, path: str | os.PathLike) -> Path:
    """Writes `figure` as a PNG at `path` atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=_DPI)
    logger.debug("Wrote %s", path)  # the caller says what it wrote (once)
    return path


def _percent_scale(*values: Any) -> float:
    """100 when all the metric values are fractions in [0, 1] (what `evaluate_reid` returns), else 1 (percentages)."""
    flat = [float(x) for value in values for x in np.ravel(np.asarray(value, dtype=np.float64))]
    return 100.0 if not flat or np.nanmax(flat) <= 1.0 else 1.0


# ----------------------------------------------------------------------------------------------- ranked lists
def border_colors(
    query_id: Any, gallery_ids: Sequence[Any], same_person: Sequence[bool] | None = None
) -> list[tuple[int, int, int]]:
    """
    The border colour of each ranked gallery image.

    Where the query's identity is known: `RIGHT_COLOR` (green) for the query's identity, else `WRONG_COLOR` (red).
    Where it is unknown (`query_id` None): `SAME_PERSON_COLOR` (blue) where `same_person` (the index's threshold
    verdict) is True, else `OTHER_PERSON_COLOR` (gray), also when there is no verdict.

    Example:

    ```python
    >>> border_colors(3, [3, 5, 3]) == [RIGHT_COLOR, WRONG_COLOR, RIGHT_COLOR]
    True
    >>> border_colors(None, [3, 5], same_person=[True, False]) == [SAME_PERSON_COLOR, OTHER_PERSON_COLOR]
    True
    ```
    """
    if query_id is not None:
        return [RIGHT_COLOR if gallery_id == query_id else WRONG_COLOR for gallery_id in gallery_ids]
    verdicts = list(same_person) if same_person is not None else [False] * len(gallery_ids)
    return [SAME_PERSON_COLOR if verdict else OTHER_PERSON_COLOR for verdict in verdicts]


def framed(image: ImageLike | np.ndarray, color: tuple[int, int, int], width: int = BORDER_WIDTH) -> np.ndarray:
    """
    The image as a `(height + 2 * width, width_px + 2 * width, 3)` uint8 array inside a solid `color` border.

    Example:

    ```python
    >>> framed(np.zeros((128, 64, 3), np.uint8), RIGHT_COLOR, width=4).shape
    (136, 72, 3)
    ```
    """
    array = np.asarray(image if isinstance(image, np.ndarray) else load_rgb(image), dtype=np.uint8)
    if array.ndim != 3 or array.shape[2] != 3:
        raise InvalidInputError(f"framed expects an RGB image of shape (height, width, 3), got {array.shape}.")
    if width < 0:
        raise InvalidInputError(f"border width must be >= 0, got {width}.")
    out = np.empty((array.shape[0] + 2 * width, array.shape[1] + 2 * width, 3), dtype=np.uint8)
    out[:] = np.asarray(color, dtype=np.uint8)
    out[width : width + array.shape[0], width : width + array.shape[1]] = array
    return out


def _tile(image: ImageLike, size: tuple[int, int]) -> np.ndarray:
    """An image resized to `size` (height, width) as a uint8 array."""
    height, width = size
    return np.asarray(load_rgb(image).resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)


def _check_lengths(**sequences: Sequence[Any]) -> None:
    """Raises ValueError naming the arguments when the given sequences are empty or of different lengths."""
    lengths = {name: len(values) for name, values in sequences.items()}
    if len(set(lengths.values())) != 1:
        raise InvalidInputError(f"these arguments must have the same length, got {lengths}.")
    if not next(iter(lengths.values())):
        raise InvalidInputError(f"{' and '.join(lengths)} are empty: pass at least one item.")


def hit_label(
    rank: int, query_id: Any, gallery_id: Any, score: float | None = None, same_person: bool | None = None
) -> str:
    """
    The two lines above a ranked gallery image: rank and similarity, then the hit's identity where the query's is
    known, else the same-person verdict (or the hit's identity when there is no verdict).

    Example:

    ```python
    >>> print(hit_label(1, None, 7, score=0.9123, same_person=True))
    #1  0.912
    same person
    ```
    """
    first = f"#{rank}" + (f"  {score:.3f}" if score is not None else "")
    if query_id is None and same_person is not None:
        return f"{first}\n{'same person' if same_person else 'other person'}"
    return f"{first}\nid {gallery_id}"


def _text_width(text: str, renderer: RendererAgg, font: FontProperties) -> float:
    """Width in pixels of the widest line of `text`."""
    return max(renderer.get_text_width_height_descent(line, font, ismath=False)[0] for line in text.split("\n"))


def _wrap_to_width(text: str, max_width: float, renderer: RendererAgg, font: FontProperties) -> str:
    """`text` with each line broken (between any two characters: file names have no spaces) to fit `max_width` pixels."""
    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for character in paragraph:
            if line and _text_width(line + character, renderer, font) > max_width:
                lines.append(line)
                line = ""
            line += character
        lines.append(line)
    return "\n".join(lines)


def plot_ranked_lists(
    query_images: Sequence[ImageLike],
    query_ids: Sequence[Any],
    gallery_images: Sequence[ImageLike],
    gallery_ids: Sequence[Any],
    ranked_indices: Any,
    path: str | os.PathLike,
    top_k: int = 10,
    query_titles: Sequence[str] | None = None,
    scores: Any = None,
    same_person: Any = None,
) -> Path:
    """
    One row per query: the query image, then its top-k gallery images, framed by [`border_colors`] and labelled by
    [`hit_label`] (rank, similarity, identity or same-person verdict).

    As torchreid's `visrank`. The picture is assembled at 1:1 pixel scale (each image `TILE_SIZE` plus a
    `BORDER_WIDTH` border), so the borders keep their exact colours in the PNG; labels are drawn in a darker shade.
    The query column widens (up to two tiles) and long titles wrap, so a title never runs into the first hit.

    Args:
        query_images: PIL images or paths, one per query.
        query_ids: identity of each query; `None` where unknown (frames then follow `same_person`).
        gallery_images: PIL images or paths of the gallery.
        gallery_ids: identity of each gallery image.
        ranked_indices: `(num_queries, >= 1)` gallery indices, best match first (e.g. from `GalleryIndex.search`).
        path: the PNG to write.
        top_k: gallery images per query (fewer when `ranked_indices` has fewer columns).
        query_titles: text above each query image; defaults to `"query\nid <id>"`.
        scores: `(num_queries, >= top_k)` similarity of each ranked hit, shown above it (`SearchResult.scores`).
        same_person: `(num_queries, >= top_k)` bool verdicts of the index's threshold (`SearchResult.same_person`),
            used where a query's identity is unknown.

    Example:

    ```python
    >>> from PIL import Image
    >>> people = [Image.new("RGB", (32, 64), color) for color in ("red", "blue", "red")]
    >>> plot_ranked_lists(people[:1], [1], people, [1, 2, 1], [[2, 0, 1]], "ranks.png", top_k=3,
    ...                   scores=[[0.9, 0.8, 0.1]]).name
    'ranks.png'
    ```
    """
    _check_lengths(query_images=query_images, query_ids=query_ids)
    _check_lengths(gallery_images=gallery_images, gallery_ids=gallery_ids)
    ranked = np.asarray(ranked_indices)
    if ranked.ndim != 2 or ranked.shape[0] != len(query_ids) or ranked.shape[1] == 0:
        raise InvalidInputError(
            f"ranked_indices must have shape (num_queries={len(query_ids)}, >= 1), got {ranked.shape}."
        )
    if not np.issubdtype(ranked.dtype, np.integer) or ranked.min() < 0 or ranked.max() >= len(gallery_ids):
        raise InvalidInputError(f"ranked_indices must be integer indices into the {len(gallery_ids)} gallery images.")
    if top_k < 1:
        raise InvalidInputError(f"top_k must be >= 1, got {top_k}.")
    if query_titles is not None and len(query_titles) != len(query_ids):
        raise InvalidInputError(f"query_titles has {len(query_titles)} entries for {len(query_ids)} queries.")
    ranked = ranked[:, :top_k]
    top_k = ranked.shape[1]
    for name, values in (("scores", scores), ("same_person", same_person)):
        shape = np.shape(values)
        if values is not None and (len(shape) != 2 or shape[0] != len(query_ids) or shape[1] < top_k):
            raise InvalidInputError(f"{name} must have shape (num_queries={len(query_ids)}, >= {top_k}), got {shape}.")

    renderer, font = RendererAgg(1, 1, _DPI), FontProperties(size=LABEL_FONT_SIZE)
    cell_height, cell_width = TILE_SIZE[0] + 2 * BORDER_WIDTH, TILE_SIZE[1] + 2 * BORDER_WIDTH
    titles = [
        _wrap_to_width(
            query_titles[row] if query_titles is not None else f"query\nid {query_id}",
            2 * cell_width - 4,
            renderer,
            font,
        )
        for row, query_id in enumerate(query_ids)
    ]
    query_column = max(cell_width, int(np.ceil(max(_text_width(title, renderer, font) for title in titles))) + 4)
    line_height = 1.2 * LABEL_FONT_SIZE * _DPI / 72  # pixels
    max_lines = max(2, *(title.count("\n") + 1 for title in titles))
    header, gap, query_gap = int(np.ceil(max_lines * line_height)) + 6, 6, 24  # pixels
    row_height = header + cell_height
    canvas_width = gap + query_column + query_gap + top_k * (cell_width + gap)
    canvas = np.full((gap + len(query_ids) * (row_height + gap), canvas_width, 3), 255, dtype=np.uint8)
    labels = []  # (x, y, text, color) in canvas pixels
    for row, (query_image, query_id) in enumerate(zip(query_images, query_ids)):
        top = gap + row * (row_height + gap) + header
        left = gap + (query_column - cell_width) // 2
        canvas[top : top + cell_height, left : left + cell_width] = framed(_tile(query_image, TILE_SIZE), QUERY_COLOR)
        labels.append((gap + query_column / 2, top - 3, titles[row], QUERY_COLOR))
        hit_ids = [gallery_ids[index] for index in ranked[row]]
        verdicts = None if same_person is None else [bool(v) for v in np.asarray(same_person)[row, :top_k]]
        hit_scores = None if scores is None else [float(v) for v in np.asarray(scores)[row, :top_k]]
        for rank, (index, color) in enumerate(zip(ranked[row], border_colors(query_id, hit_ids, verdicts))):
            left = gap + query_column + query_gap + rank * (cell_width + gap)
            canvas[top : top + cell_height, left : left + cell_width] = framed(
                _tile(gallery_images[index], TILE_SIZE), color
            )
            text = hit_label(
                rank + 1,
                query_id,
                hit_ids[rank],
                None if hit_scores is None else hit_scores[rank],
                None if verdicts is None else verdicts[rank],
            )
            labels.append((left + cell_width / 2, top - 3, text, tuple(int(0.7 * c) for c in color)))

    figure = Figure(figsize=(canvas.shape[1] / _DPI, canvas.shape[0] / _DPI), dpi=_DPI)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.imshow(canvas, interpolation="nearest")
    axes.set_axis_off()
    for x, y, text, color in labels:
        axes.text(
            x, y, text, ha="center", va="bottom", fontproperties=font, color=np.array(color) / 255, linespacing=1.0
        )
    return _save_figure(figure, path)


# -------------------------------------------------------------------------------------------------- CMC curves
def plot_cmc_curves(results: Mapping[str, Mapping[str, Any]], path: str | os.PathLike, max_rank: int = 50) -> Path:
    """
    CMC curves (rank 1..`max_rank`), one per model, with Rank-1 and mAP in the legend.

    Args:
        results: `{model_name: result}`, each result as `hf_lareid.evaluation.evaluate_reid` returns it: `cmc`
            (`(num_ranks,)`, fractions in [0, 1] or percentages), optional `rank1` (defaults to `cmc[0]`) and `mAP`.
        path: the PNG to write.
        max_rank: last rank drawn.

    Example:

    ```python
    >>> untrained, tuned = {"cmc": np.linspace(0.1, 0.6, 10)}, {"cmc": np.linspace(0.5, 1.0, 10)}
    >>> plot_cmc_curves({"untrained": untrained, "fine-tuned": tuned}, "cmc.png", max_rank=10).name
    'cmc.png'
    ```
    """
    if not results:
        raise InvalidInputError("results is empty: pass {model_name: evaluate_reid(...) result}.")
    if max_rank < 1:
        raise InvalidInputError(f"max_rank must be >= 1, got {max_rank}.")
    figure = Figure(figsize=(6, 4.5), dpi=_DPI, layout="constrained")
    axes = figure.add_subplot()
    for name, result in results.items():
        if "cmc" not in result or not len(result["cmc"]):
            raise InvalidInputError(f"the result of {name!r} has no 'cmc' curve: pass what evaluate_reid returns.")
        cmc = np.asarray(result["cmc"], dtype=np.float64)
        rank1 = float(result.get("rank1", cmc[0]))
        scale = _percent_scale(cmc, rank1, result.get("mAP", 0.0))
        cmc = scale * cmc[:max_rank]
        label = f"{name} (Rank-1 {scale * rank1:.1f}%"
        label += f", mAP {scale * float(result['mAP']):.1f}%)" if "mAP" in result else ")"
        ranks = np.arange(1, len(cmc) + 1)
        axes.plot(ranks, cmc, marker="o" if len(cmc) <= 20 else None, markersize=3, label=label)
    axes.set(xlabel="rank", ylabel="matching rate (%)", title="CMC curve", xlim=(1, max_rank), ylim=(0, 100.5))
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    return _save_figure(figure, path)


# --------------------------------------------------------------------------------------------------- attention
def plot_attention_rollout(
    images: Sequence[ImageLike],
    rollout: torch.Tensor | np.ndarray,
    image_size: tuple[int, int],
    path: str | os.PathLike,
) -> Path:
    """
    Each image above its attention rollout overlay, with the row parts marked and numbered.

    As the paper's "Visualization of Attention" figure. The rollout is upsampled bilinearly to `image_size`.

    Args:
        images: PIL images or paths (a handful: one column each).
        rollout: `(batch, rows, cols)` in [0, 1], one per image (`hf_lareid.analysis.attention_rollout.attention_rollout`).
        image_size: `(height, width)` the images are shown at (the model's input size).
        path: the PNG to write.

    Example:

    ```python
    >>> from PIL import Image
    >>> images = [Image.new("RGB", (32, 64), "gray")] * 2
    >>> rollout = np.random.default_rng(0).random((2, 4, 2))  # e.g. attention_rollout(model, pixel_values)
    >>> plot_attention_rollout(images, rollout, (64, 32), "attention.png").name
    'attention.png'
    ```
    """
    if not len(images):
        raise InvalidInputError("images is empty: pass at least one image.")
    pictures = [load_rgb(image) for image in images]
    height, width = image_size
    rollout = torch.as_tensor(rollout, dtype=torch.float32)
    rows = rollout.shape[1]
    heat = torch.nn.functional.interpolate(rollout[:, None], size=(height, width), mode="bilinear", align_corners=False)
    heat = heat[:, 0].clamp(0, 1).numpy()

    column_width = max(1.2, 1.4 * width / height)
    figure = Figure(figsize=(max(3.0, column_width * len(pictures)), 5.2), dpi=_DPI, layout="constrained")
    grid = figure.subplots(2, len(pictures), squeeze=False)
    row_height = height / rows
    for column, (picture, heatmap) in enumerate(zip(pictures, heat)):
        resized = np.asarray(picture.resize((width, height), Image.Resampling.BILINEAR))
        grid[0, column].imshow(resized)
        grid[1, column].imshow(resized)
        grid[1, column].imshow(heatmap, cmap="jet", alpha=0.5, vmin=0, vmax=1)
        for boundary in range(1, rows):
            grid[1, column].axhline(boundary * row_height - 0.5, color="white", linewidth=0.6, alpha=0.8)
        if column == 0:
            font_size = max(4, min(7, 90 / rows))
            for part in range(rows):
                y = (part + 0.5) * row_height
                grid[1, column].text(-2, y, str(part + 1), ha="right", va="center", fontsize=font_size)
        for axes in grid[:, column]:
            axes.set_axis_off()
    grid[0, 0].set_title("input", fontsize=8, loc="left")
    grid[1, 0].set_title(f"rollout, {rows} parts", fontsize=8, loc="left")
    return _save_figure(figure, path)


# --------------------------------------------------------------------------------------------- training curves
def plot_training_curves(
    log_history: Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    unfreeze_epochs: Sequence[float],
) -> Path:
    """
    Training loss and evaluation Rank-1 / mAP against the epoch, with the unfreezing epochs marked.

    Args:
        log_history: the Trainer's `state.log_history`: dicts with `epoch` and `loss` (training logs) or
            `eval_rank1` / `eval_mAP` (evaluation logs, fractions or percentages).
        path: the PNG to write.
        unfreeze_epochs: epochs to mark with vertical lines (`training.callbacks.unfreeze_epochs(log_history)`: those
            where `BlockwiseUnfreezeCallback` changed the trainable blocks).

    Example:

    ```python
    >>> log_history = [{"epoch": 1.0, "loss": 3.2}, {"epoch": 1.0, "eval_rank1": 0.4, "eval_mAP": 0.3},
    ...                {"epoch": 2.0, "loss": 2.1}, {"epoch": 2.0, "eval_rank1": 0.6, "eval_mAP": 0.5}]
    >>> plot_training_curves(log_history, "training.png", unfreeze_epochs=[0, 1]).name  # or trainer.state.log_history
    'training.png'
    ```
    """
    if not log_history:
        raise InvalidInputError("log_history is empty: pass trainer.state.log_history after training.")
    losses = [(entry["epoch"], entry["loss"]) for entry in log_history if "loss" in entry and "epoch" in entry]
    metrics = {
        label: [(entry["epoch"], entry[key]) for entry in log_history if key in entry and "epoch" in entry]
        for key, label in (("eval_rank1", "Rank-1"), ("eval_mAP", "mAP"))
    }
    if not losses and not any(metrics.values()):
        raise InvalidInputError(
            "log_history has no 'loss' or 'eval_rank1'/'eval_mAP' entries with an 'epoch': nothing to plot."
        )

    figure = Figure(figsize=(9, 3.6), dpi=_DPI, layout="constrained")
    loss_axes, metric_axes = figure.subplots(1, 2)
    if losses:
        epochs, values = zip(*losses)
        loss_axes.plot(epochs, values, color="tab:blue", label="training loss")
    loss_axes.set(xlabel="epoch", ylabel="loss", title="Training loss")
    scale = _percent_scale(*[value for points in metrics.values() for _, value in points])
    for label, points in metrics.items():
        if points:
            epochs, values = zip(*points)
            metric_axes.plot(epochs, scale * np.asarray(values), marker="o", markersize=3, label=label)
    metric_axes.set(xlabel="epoch", ylabel="%", title="Evaluation", ylim=(0, 100.5))
    if not any(metrics.values()):
        metric_axes.text(0.5, 0.5, "no evaluation logged", ha="center", va="center", transform=metric_axes.transAxes)
    for axes in (loss_axes, metric_axes):
        for index, epoch in enumerate(unfreeze_epochs):
            axes.axvline(epoch, color="gray", linestyle="--", linewidth=0.8, label="unfreezing" if index == 0 else None)
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
    return _save_figure(figure, path)


__all__ = [
    "BORDER_WIDTH",
    "OTHER_PERSON_COLOR",
    "QUERY_COLOR",
    "RIGHT_COLOR",
    "SAME_PERSON_COLOR",
    "TILE_SIZE",
    "WRONG_COLOR",
    "border_colors",
    "framed",
    "hit_label",
    "plot_attention_rollout",
    "plot_cmc_curves",
    "plot_ranked_lists",
    "plot_training_curves",
]
