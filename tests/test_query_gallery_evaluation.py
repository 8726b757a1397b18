"""evaluate_model: sharding without a process group is refused rather than scoring one shard."""

import pytest

from hf_lareid import evaluate_model


def test_a_shard_without_a_process_group_is_refused(tiny_model, random_images):
    with pytest.raises(ValueError, match="torchrun"):
        evaluate_model(tiny_model, random_images, random_images, shard=(0, 2))
