"""`ReIDBackend.embed_boxes`: the crops of a frame's boxes embedded as `extract_features` embeds the same crops."""

import numpy as np
import pytest
from PIL import Image

from hf_lareid import extract_features
from hf_lareid.tracking import BoxError, ReIDBackend


@pytest.fixture
def backend(tiny_model, tiny_image_processor):
    return ReIDBackend(tiny_model, tiny_image_processor, runtime="torch", batch_size=2)


def test_embed_boxes_equals_extract_features_on_the_same_crops(backend, tiny_model, tiny_image_processor):
    frame = np.random.default_rng(0).integers(0, 255, (100, 80, 3), dtype=np.uint8)
    boxes = [[0, 0, 30, 60], [10.4, 20.6, 50, 90], [-5, -8, 20, 40], [70, 90, 95, 130]]  # the last two are clipped
    crops = [frame[0:60, 0:30], frame[20:90, 10:50], frame[0:40, 0:20], frame[90:100, 70:80]]
    expected = extract_features(
        tiny_model, [Image.fromarray(c) for c in crops], image_processor=tiny_image_processor, runtime="torch"
    ).embeddings
    embeddings = backend.embed_boxes(frame, np.array(boxes))
    assert embeddings.shape == (4, 128) and embeddings.dtype == np.float32
    np.testing.assert_allclose(embeddings, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    # An OpenCV (BGR) frame gives the same vectors as its RGB twin.
    np.testing.assert_allclose(backend.embed_boxes(frame[..., ::-1].copy(), boxes, bgr=True), expected, atol=1e-5)
    assert backend(frame, np.zeros((0, 4))).shape == (0, 128)


@pytest.mark.parametrize(
    "box, needle",
    [
        ([10, 10, 10, 50], "box 1 [10, 10, 10, 50] has zero area"),
        ([200, 10, 250, 50], "box 1 [200, 10, 250, 50] lies outside"),
    ],
)
def test_bad_boxes_are_named_in_one_line(backend, box, needle):
    frame = np.zeros((100, 80, 3), dtype=np.uint8)
    with pytest.raises(BoxError, match=needle.replace("[", r"\[").replace("]", r"\]")) as error:
        backend.embed_boxes(frame, [[0, 0, 20, 40], box])
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="shape"):
        backend.embed_boxes(np.zeros((100, 80), dtype=np.uint8), [[0, 0, 20, 40]])
