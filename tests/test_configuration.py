"""LATransformerConfig: fields, grids, validation, JSON round trip and Auto registration."""

import json

import pytest
from model_factories import tiny_backbone
from transformers import AutoConfig, SwinConfig, ViTConfig

from hf_lareid import LATransformerConfig


def test_defaults_are_the_paper_baseline():
    config = LATransformerConfig()
    assert isinstance(config.backbone_config, ViTConfig)
    assert config.image_size == (224, 224)
    assert config.patch_size == (16, 16)
    assert config.num_parts == 14
    assert config.embedding_dim == 14 * 768
    assert config.lambda_global == 0.8
    assert config.bottleneck_dim == 256
    assert config.head_dropout == 0.5
    assert config.head_activation == "relu"
    assert config.embedding == "gelt"
    assert config.verification_threshold is None


@pytest.mark.parametrize(
    ("image_size", "patch_size", "grid", "num_parts"),
    [
        (224, 16, (14, 14), 14),
        (384, 16, (24, 24), 24),
        ([64, 64], 16, (4, 4), 4),
        ([64, 32], 16, (4, 2), 4),
        ([256, 128], 16, (16, 8), 16),
        ([32, 16], 4, (8, 4), 8),
    ],
)
def test_grid_and_parts(image_size, patch_size, grid, num_parts):
    config = LATransformerConfig(backbone_config=tiny_backbone(image_size=image_size, patch_size=patch_size))
    assert config.grid_size == grid
    assert config.num_parts == num_parts
    assert config.embedding_dim == num_parts * 32
    assert config.local_embedding_scale == pytest.approx(num_parts**0.5)


def test_backbone_dict_without_model_type_is_a_vit():
    config = LATransformerConfig(backbone_config={"image_size": [64, 32]})
    assert isinstance(config.backbone_config, ViTConfig)
    assert config.grid_size == (4, 2)


def test_json_round_trip_and_save_load(tmp_path):
    config = LATransformerConfig(
        backbone_config=tiny_backbone(),
        num_labels=7,
        lambda_global=0.125,
        head_activation=None,
        embedding="local",
        bottleneck_dim=16,
        head_dropout=0.1,
        verification_threshold=0.42,
    )
    on_disk = json.loads(config.to_json_string())
    assert on_disk["model_type"] == "la-transformer"
    assert on_disk["backbone_config"]["model_type"] == "vit"
    assert on_disk["backbone_config"]["image_size"] == [32, 16]

    for reloaded in (LATransformerConfig.from_dict(on_disk), None):
        if reloaded is None:
            config.save_pretrained(tmp_path)
            reloaded = AutoConfig.from_pretrained(tmp_path)
        assert isinstance(reloaded, LATransformerConfig)
        assert isinstance(reloaded.backbone_config, ViTConfig)
        for name in (
            "num_labels",
            "lambda_global",
            "head_activation",
            "embedding",
            "bottleneck_dim",
            "head_dropout",
            "verification_threshold",
            "grid_size",
            "num_parts",
            "embedding_dim",
        ):
            assert getattr(reloaded, name) == getattr(config, name), name
        assert reloaded.backbone_config.to_dict() == config.backbone_config.to_dict()


def test_auto_config_knows_the_model_type():
    config = AutoConfig.for_model("la-transformer", backbone_config=tiny_backbone(), num_labels=3)
    assert isinstance(config, LATransformerConfig)
    assert config.num_labels == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backbone_config": tiny_backbone(image_size=[30, 16])}, "not divisible by patch_size"),
        ({"backbone_config": tiny_backbone(image_size=[64, 30], patch_size=16)}, "not divisible by patch_size"),
        ({"embedding": "cls"}, "embedding must be one of"),
        ({"head_activation": "tanh"}, "head_activation must be one of"),
        ({"lambda_global": -0.5}, "lambda_global"),
        ({"bottleneck_dim": 0}, "bottleneck_dim"),
        ({"head_dropout": 1.0}, "head_dropout"),
        ({"verification_threshold": 1.5}, "verification_threshold"),
        ({"backbone_config": {"model_type": "swin"}}, "no backbone of model_type='swin': use one of 'vit', 'deit'"),
        ({"backbone_config": SwinConfig()}, "must be a dict or one of ViTConfig, DeiTConfig"),
        ({"global_token": "register"}, "global_token must be one of"),
        ({"global_token": "mean"}, "needs a DeiT backbone"),
    ],
)
def test_validation_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LATransformerConfig(**kwargs)


def test_the_whole_verification_calibration_is_stored_and_checked(tmp_path):
    calibration = {
        "threshold": 0.61,
        "target_false_match_rate": 0.001,
        "false_match_rate": 0.0009,
        "true_match_rate": 0.8,
        "num_genuine_pairs": 10,
        "num_impostor_pairs": 9000,
        "calibrated_on": "market1501 query split",
    }
    config = LATransformerConfig(backbone_config=tiny_backbone())
    config.set_verification_calibration(calibration)
    assert config.verification_threshold == 0.61
    config.save_pretrained(tmp_path)
    reloaded = AutoConfig.from_pretrained(tmp_path)
    assert reloaded.verification_calibration == calibration and reloaded.verification_threshold == 0.61
    assert LATransformerConfig(verification_calibration=calibration).verification_threshold == 0.61
    with pytest.raises(ValueError, match="threshold equals verification_threshold"):
        LATransformerConfig(verification_threshold=0.2, verification_calibration=calibration)
