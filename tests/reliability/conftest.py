"""Fixtures of the fault-injection suite."""

import pytest

from hf_lareid.data import generate_synthetic_reid


@pytest.fixture(scope="module")
def market_dir(tmp_path_factory):
    """6 train ids and 6 test ids, 2 cameras x 2 images each, plus 3 distractors, in the Market-1501 layout."""
    return generate_synthetic_reid(
        tmp_path_factory.mktemp("market"),
        num_ids=12,
        num_cameras=2,
        images_per_camera=2,
        image_size=(64, 32),
        num_distractors=3,
    )
