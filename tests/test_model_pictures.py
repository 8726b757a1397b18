"""Pictures: each is a valid PNG of a sensible size; ranked-list borders follow the identities; rollout is exact."""

import numpy as np
import pytest
import torch
from PIL import Image

from hf_lareid.analysis.attention_rollout import attention_rollout
from hf_lareid.analysis.model_pictures import plot_attention, plot_training_curves
from hf_lareid.analysis.pictures import (
    BORDER_WIDTH,
    OTHER_PERSON_COLOR,
    RIGHT_COLOR,
    SAME_PERSON_COLOR,
    TILE_SIZE,
    WRONG_COLOR,
    border_colors,
    framed,
    hit_label,
    plot_cmc_curves,
    plot_ranked_lists,
)

FRAME_PIXELS = (TILE_SIZE[0] + 2 * BORDER_WIDTH) * (TILE_SIZE[1] + 2 * BORDER_WIDTH) - TILE_SIZE[0] * TILE_SIZE[1]


def _read_png(path, min_size=200):
    """The picture as an (height, width, 3) uint8 array, after checking it is a PNG of a sensible size."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert min_size <= image.width <= 4000 and min_size <= image.height <= 4000, image.size
        return np.asarray(image.convert("RGB"))


def _count(pixels, color):
    return int((pixels == np.array(color, dtype=np.uint8)).all(axis=-1).sum())


@pytest.fixture
def gray_images():
    """Six plain gray images (no pixel can be mistaken for a border colour), with and without paths."""
    return [Image.new("RGB", (40 + i, 90), (60 + 20 * i,) * 3) for i in range(6)]


# ----------------------------------------------------------------------------------------------- ranked lists
def test_border_colors_follow_identities():
    assert border_colors(7, [7, 3, 7, "7"]) == [RIGHT_COLOR, WRONG_COLOR, RIGHT_COLOR, WRONG_COLOR]
    assert border_colors("a", []) == []


def test_framed_draws_a_solid_border_around_the_unchanged_image():
    image = np.random.default_rng(0).integers(0, 256, (20, 10, 3), dtype=np.uint8)
    out = framed(image, WRONG_COLOR, width=3)
    assert out.shape == (26, 16, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[3:-3, 3:-3], image)
    border = np.ones(out.shape[:2], dtype=bool)
    border[3:-3, 3:-3] = False
    assert (out[border] == WRONG_COLOR).all()


def test_framed_reads_paths(tmp_path):
    path = tmp_path / "person.png"
    Image.new("RGB", (8, 16), (10, 20, 30)).save(path)
    out = framed(path, RIGHT_COLOR, width=1)
    assert out.shape == (18, 10, 3)
    assert tuple(out[0, 0]) == RIGHT_COLOR and tuple(out[5, 5]) == (10, 20, 30)


def test_ranked_list_png_has_one_green_frame_per_right_hit(tmp_path, gray_images):
    gallery_ids = [1, 1, 2, 2, 3, 3]
    # query id 1: right, wrong, right, wrong; query id 3: right, right, wrong, wrong
    ranked = np.array([[0, 2, 1, 4], [5, 4, 3, 0]])
    path = tmp_path / "out" / "ranks.png"
    returned = plot_ranked_lists(gray_images[:2], [1, 3], gray_images, gallery_ids, ranked, path, top_k=4)

    assert returned == path
    pixels = _read_png(path)
    assert _count(pixels, RIGHT_COLOR) == 4 * FRAME_PIXELS
    assert _count(pixels, WRONG_COLOR) == 4 * FRAME_PIXELS


def test_ranked_list_all_right_has_no_red_and_top_k_cuts(tmp_path, gray_images):
    path = tmp_path / "ranks.png"
    ranked = np.array([[0, 1, 2, 3, 4, 5]])
    plot_ranked_lists(
        [gray_images[0]], [1], gray_images, [1, 1, 2, 2, 3, 3], ranked, path, top_k=2, query_titles=["a query"]
    )
    pixels = _read_png(path, min_size=150)  # one query, two hits: a small picture
    assert _count(pixels, RIGHT_COLOR) == 2 * FRAME_PIXELS
    assert _count(pixels, WRONG_COLOR) == 0


def test_ranked_list_reads_image_paths(tmp_path, gray_images):
    paths = []
    for i, image in enumerate(gray_images[:3]):
        paths.append(tmp_path / f"{i}.jpg")
        image.save(paths[-1])
    path = plot_ranked_lists(paths[:2], [0, 1], paths, [0, 1, 2], np.array([[0, 1], [2, 1]]), tmp_path / "r.png")
    pixels = _read_png(path)
    assert _count(pixels, RIGHT_COLOR) == 2 * FRAME_PIXELS and _count(pixels, WRONG_COLOR) == 2 * FRAME_PIXELS


def test_border_colors_of_an_unknown_query_follow_the_verdict():
    assert border_colors(None, [7, 3], same_person=[True, False]) == [SAME_PERSON_COLOR, OTHER_PERSON_COLOR]
    assert border_colors(None, [7, 7]) == [OTHER_PERSON_COLOR] * 2  # no threshold: no verdict, no identity colour


def test_hit_labels_show_the_score_and_identity_or_verdict():
    assert hit_label(1, 7, 7, score=0.91234) == "#1  0.912\nid 7"
    assert hit_label(2, None, 7, score=0.5, same_person=False) == "#2  0.500\nother person"
    assert hit_label(3, None, 7, score=0.95, same_person=True) == "#3  0.950\nsame person"
    assert hit_label(4, None, 7) == "#4\nid 7"


QUERY_FILL = (40, 120, 90)  # a colour no text blend (grays, the frames' shades on white) can produce


def _query_image():
    return Image.new("RGB", (40, 90), QUERY_FILL)


def _tile_top(pixels):
    """The first row of the query image's tile."""
    return np.where((pixels == QUERY_FILL).all(axis=-1).any(axis=1))[0].min()


def test_known_and_unknown_queries_are_framed_by_identity_and_by_verdict(tmp_path, gray_images):
    gallery_ids = [1, 1, 2, 2, 3, 3]
    ranked = np.array([[0, 2, 1], [5, 4, 3]])  # query id 1: right, wrong, right; the second query's id is unknown
    scores = np.array([[0.9, 0.5, 0.4], [0.95, 0.7, 0.2]])
    path = plot_ranked_lists(
        gray_images[:2],
        [1, None],
        gray_images,
        gallery_ids,
        ranked,
        tmp_path / "r.png",
        top_k=3,
        scores=scores,
        same_person=scores > 0.6,
    )
    pixels = _read_png(path)
    assert _count(pixels, RIGHT_COLOR) == 2 * FRAME_PIXELS and _count(pixels, WRONG_COLOR) == FRAME_PIXELS
    assert _count(pixels, SAME_PERSON_COLOR) == 2 * FRAME_PIXELS and _count(pixels, OTHER_PERSON_COLOR) == FRAME_PIXELS
    # Without a threshold an unknown query's hits are all neutral: no red that would read as "wrong".
    path = plot_ranked_lists(
        [gray_images[0]], [None], gray_images, gallery_ids, ranked[:1], tmp_path / "n.png", scores=scores[:1]
    )
    pixels = _read_png(path, min_size=150)
    assert _count(pixels, WRONG_COLOR) == _count(pixels, RIGHT_COLOR) == 0
    assert _count(pixels, OTHER_PERSON_COLOR) == 3 * FRAME_PIXELS


def test_a_long_query_title_wraps_inside_the_query_column(tmp_path, gray_images):
    title = "camera-entrance-north_2026-12-01T11-58-03_person-crop-000123.jpg\nidentity unknown"
    path = plot_ranked_lists(
        [_query_image()],
        [None],
        gray_images,
        [1, 1, 2, 2, 3, 3],
        np.array([[0, 1]]),
        tmp_path / "r.png",
        query_titles=[title],
        scores=[[0.9, 0.3]],
        same_person=[[True, False]],
    )
    pixels = _read_png(path, min_size=150)
    white = (pixels == 255).all(axis=-1)
    first_hit_left = np.where((pixels == SAME_PERSON_COLOR).all(axis=-1).any(axis=0))[0].min()
    assert white[:, first_hit_left - 12 : first_hit_left].all()  # nothing runs into the first hit
    assert white[:, :3].all() and white[:3].all()  # nothing is cut off at the left or top edge
    tile_top = _tile_top(pixels)
    title_rows = np.where(~white[: tile_top - BORDER_WIDTH, :first_hit_left].all(axis=1))[0]
    assert title_rows.max() - title_rows.min() > 3 * 9  # wrapped onto at least 3 lines (9+ px each at 7 pt)


def test_scores_are_written_above_the_hits(tmp_path, gray_images):
    def draw(scores, name):
        return _read_png(
            plot_ranked_lists(
                [_query_image()],
                [1],
                gray_images,
                [1, 1, 2, 2, 3, 3],
                np.array([[0, 2]]),
                tmp_path / name,
                scores=scores,
            ),
            min_size=150,
        )

    first, second = draw([[0.912, 0.301]], "a.png"), draw([[0.455, 0.107]], "b.png")
    assert first.shape == second.shape
    changed_rows = np.where((first != second).any(axis=(1, 2)))[0]
    tile_top = _tile_top(first)
    assert len(changed_rows) and changed_rows.max() < tile_top - BORDER_WIDTH  # only the labels above the tiles


@pytest.mark.parametrize(
    "change, message",
    [
        ({"query_ids": [1]}, "same length"),
        ({"gallery_ids": [1, 2]}, "same length"),
        ({"query_images": [], "query_ids": []}, "empty"),
        ({"ranked_indices": np.array([[0, 1]])}, "shape"),
        ({"ranked_indices": np.array([[0, 9], [1, 2]])}, "indices into the 6 gallery"),
        ({"ranked_indices": np.zeros((2, 0), dtype=int)}, "shape"),
        ({"top_k": 0}, "top_k"),
        ({"query_titles": ["only one"]}, "query_titles"),
        ({"scores": np.zeros((2, 1))}, "scores must have shape"),
        ({"same_person": np.zeros((1, 2), bool)}, "same_person must have shape"),
    ],
)
def test_ranked_list_bad_input_is_a_clear_error(tmp_path, gray_images, change, message):
    arguments = {
        "query_images": gray_images[:2],
        "query_ids": [1, 2],
        "gallery_images": gray_images,
        "gallery_ids": [1, 1, 2, 2, 3, 3],
        "ranked_indices": np.array([[0, 1], [2, 3]]),
        "path": tmp_path / "ranks.png",
    }
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        plot_ranked_lists(**arguments)
    assert not (tmp_path / "ranks.png").exists()


def test_unreadable_gallery_image_names_the_file(tmp_path, gray_images):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="broken.jpg"):
        plot_ranked_lists(gray_images[:1], [1], [broken], [1], np.array([[0]]), tmp_path / "r.png")


# -------------------------------------------------------------------------------------------------- CMC curves
def _result(rank1, mAP, scale=1.0):
    cmc = np.minimum(1.0, rank1 + np.linspace(0, 0.5, 50))
    return {"cmc": scale * cmc, "rank1": scale * rank1, "mAP": scale * mAP}


def test_cmc_curves_written_and_percentages_plot_like_fractions(tmp_path):
    fractions = plot_cmc_curves({"fine-tuned": _result(0.6, 0.4), "untrained": _result(0.1, 0.05)}, tmp_path / "a.png")
    percents = plot_cmc_curves(
        {"fine-tuned": _result(0.6, 0.4, 100), "untrained": _result(0.1, 0.05, 100)}, tmp_path / "b.png"
    )
    pixels = _read_png(fractions)
    np.testing.assert_array_equal(pixels, _read_png(percents))
    other = _read_png(plot_cmc_curves({"fine-tuned": _result(0.3, 0.4)}, tmp_path / "c.png"))
    assert not np.array_equal(pixels, other)


def test_cmc_curve_shorter_than_max_rank(tmp_path):
    # A gallery smaller than max_rank gives a shorter curve; rank1 and mAP are optional.
    _read_png(plot_cmc_curves({"small": {"cmc": np.array([0.5, 0.75, 1.0])}}, tmp_path / "cmc.png", max_rank=50))


@pytest.mark.parametrize(
    "results, message", [({}, "empty"), ({"m": {"rank1": 0.5}}, "'m' has no 'cmc'"), ({"m": {"cmc": []}}, "no 'cmc'")]
)
def test_cmc_bad_input_is_a_clear_error(tmp_path, results, message):
    with pytest.raises(ValueError, match=message):
        plot_cmc_curves(results, tmp_path / "cmc.png")


# --------------------------------------------------------------------------------------------------- attention
def _hand_rollout(attentions, rows, cols):
    """Abnar & Zuidema's rollout written out per image with numpy, from the model's own attention maps."""
    result = []
    for image in range(attentions[0].shape[0]):
        rollout = np.eye(attentions[0].shape[-1])
        for layer in attentions:
            mean = layer[image].numpy().astype(np.float64).mean(axis=0)
            residual = mean + np.eye(len(mean))
            residual /= residual.sum(axis=1, keepdims=True)
            rollout = residual @ rollout
        cls_row = rollout[0, 1:].reshape(rows, cols)
        result.append((cls_row - cls_row.min()) / (cls_row.max() - cls_row.min()))
    return np.stack(result)


def test_attention_rollout_matches_hand_computation(tiny_model):
    pixel_values = torch.randn(3, 3, 64, 32, generator=torch.Generator().manual_seed(0))
    tiny_model.train()
    rollout = attention_rollout(tiny_model, pixel_values)

    assert rollout.shape == (3, 4, 2)  # (batch, rows, cols) of the 64x32 / patch-16 grid
    assert float(rollout.min()) == 0.0 and float(rollout.max()) == 1.0
    assert tiny_model.training and tiny_model.vit.config._attn_implementation == "sdpa"  # state restored
    with torch.no_grad():
        attentions = tiny_model.eval()(pixel_values, output_attentions=True).attentions
    assert len(attentions) == 2
    np.testing.assert_allclose(rollout.numpy(), _hand_rollout(attentions, 4, 2), atol=1e-5)


def test_attention_picture_written(tmp_path, tiny_model, tiny_image_processor, random_images):
    path = plot_attention(tiny_model, random_images[:3], tiny_image_processor, tmp_path / "attention.png")
    pixels = _read_png(path)
    assert pixels.std() > 0  # not a blank canvas


def test_attention_without_images_is_a_clear_error(tmp_path, tiny_model, tiny_image_processor):
    with pytest.raises(ValueError, match="images is empty"):
        plot_attention(tiny_model, [], tiny_image_processor, tmp_path / "attention.png")


# --------------------------------------------------------------------------------------------- training curves
def _log_history(with_unfreezing=True):
    history = [{"epoch": 0.0, "step": 0, "trainable_blocks": 1, "lr_factor": 0.8}] if with_unfreezing else []
    for epoch in range(1, 6):
        history.append({"loss": 4.0 / epoch, "learning_rate": 1e-3, "epoch": epoch - 0.5, "step": 10 * epoch - 5})
        history.append({"eval_rank1": 0.15 * epoch, "eval_mAP": 0.1 * epoch, "eval_loss": 1.0, "epoch": float(epoch)})
        if with_unfreezing and epoch % 2 == 0:
            blocks = 1 + epoch // 2
            history.append({"epoch": float(epoch), "step": 10 * epoch, "trainable_blocks": blocks, "lr_factor": 0.5})
    history.append({"train_runtime": 12.0, "epoch": 5.0, "step": 50})
    return history


def test_training_curves_mark_logged_unfreezing_epochs(tmp_path):
    derived = _read_png(plot_training_curves(_log_history(), tmp_path / "derived.png"))
    explicit = _read_png(
        plot_training_curves(_log_history(with_unfreezing=False), tmp_path / "explicit.png", unfreeze_epochs=[0, 2, 4])
    )
    unmarked = _read_png(plot_training_curves(_log_history(), tmp_path / "unmarked.png", unfreeze_epochs=[]))
    np.testing.assert_array_equal(derived, explicit)
    assert not np.array_equal(derived, unmarked)


def test_training_curves_without_evaluation(tmp_path):
    history = [entry for entry in _log_history() if "eval_rank1" not in entry]
    _read_png(plot_training_curves(history, tmp_path / "training.png"))


@pytest.mark.parametrize(
    "history, message", [([], "empty"), ([{"train_runtime": 1.0, "epoch": 1.0}], "nothing to plot")]
)
def test_training_curves_bad_input_is_a_clear_error(tmp_path, history, message):
    with pytest.raises(ValueError, match=message):
        plot_training_curves(history, tmp_path / "training.png")
