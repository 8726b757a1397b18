"""evaluate_model and calibrate_model: sharding without a process group is refused rather than scoring one shard;
encoder settings go with a model, never with a ready encoder."""

import pytest

from hf_lareid import ReIDEncoder, calibrate_model, evaluate_model


def test_a_shard_without_a_process_group_is_refused(tiny_model, random_images):
    with pytest.raises(ValueError, match="torchrun"):
        evaluate_model(tiny_model, random_images, random_images, shard=(0, 2))


def test_encoder_settings_given_with_a_ready_encoder_are_refused(tiny_model, tiny_image_processor, random_images):
    encoder = ReIDEncoder(tiny_model, tiny_image_processor, runtime="torch", bf16=False)
    with pytest.raises(TypeError, match="flip given with a ReIDEncoder"):
        evaluate_model(encoder, random_images, random_images, flip=True)
    with pytest.raises(TypeError, match="batch_size, bf16 given with a ReIDEncoder"):
        calibrate_model(encoder, random_images, "random crops", bf16=True, batch_size=8)
