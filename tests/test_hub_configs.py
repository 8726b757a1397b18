"""The shipped setups: Table 2 of the paper plus `small` and `tiny`, loadable from the installed package."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoImageProcessor

from hf_lareid import LATransformerConfig, LATransformerForReID
from hf_lareid.hub.setups import SETUPS_DIR, list_setups, load_setup, setup_path

# name: (blocks, width, image size, parts, classes, batch, epochs, lr, t, lr decay, backbone)
TABLE_2 = {
    "baseline": (12, 768, (224, 224), 14, 62, 32, 30, 3e-5, 2, 0.8, "google/vit-base-patch16-224"),
    "improvement1": (24, 1024, (384, 384), 24, 825, 8, 15, 2e-5, 1, 0.8, "google/vit-large-patch16-384"),
    "improvement2": (24, 1024, (224, 224), 14, 62, 32, 30, 2e-5, 2, 0.8, "google/vit-large-patch16-224"),
}


def test_list_setups():
    assert list_setups() == ["baseline", "improvement1", "improvement2", "small", "tiny"]


def test_unknown_setup_names_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"unknown setup 'imp3'.*'baseline', 'improvement1', 'improvement2', 'small', 'tiny'"
    ):
        setup_path("imp3")
    with pytest.raises(ValueError, match="unknown setup"):
        load_setup("imp3")


def test_top_level_folder_is_the_package_data():
    checkout_link = Path(__file__).resolve().parents[1] / "hub_configs"
    if checkout_link.exists():  # absent when the tests run against an installed package only
        assert checkout_link.resolve() == SETUPS_DIR


@pytest.mark.parametrize("name", sorted(TABLE_2))
def test_paper_setups_follow_table_2(name):
    blocks, width, image_size, parts, classes, batch, epochs, lr, t, decay, backbone = TABLE_2[name]
    config = AutoConfig.from_pretrained(setup_path(name))
    assert isinstance(config, LATransformerConfig)
    assert config.backbone_config.num_hidden_layers == blocks and config.hidden_size == width
    assert config.image_size == image_size and config.patch_size == (16, 16)
    assert config.num_parts == parts and config.embedding_dim == parts * width
    assert config.num_labels == classes and config.lambda_global == 0.8
    assert config.backbone_config.layer_norm_eps == 1e-12  # as the google/vit-* checkpoints

    with torch.device("meta"):
        model = LATransformerForReID(config)
    assert len(model.vit.layers) == blocks and len(model.part_classifiers) == parts
    assert model.part_classifiers[0].classifier.out_features == classes

    _, image_processor, training_args = load_setup(name)
    assert (image_processor.size.height, image_processor.size.width) == image_size
    assert image_processor.resample == 3 and list(image_processor.image_mean) == [0.5, 0.5, 0.5]
    assert training_args["backbone"] == backbone
    assert training_args["per_device_train_batch_size"] == batch and training_args["num_train_epochs"] == epochs
    assert training_args["learning_rate"] == lr and training_args["unfreeze_every_epochs"] == t
    assert training_args["lr_decay"] == decay and training_args["num_unfreeze_blocks"] == blocks
    assert training_args["num_train_classes"] == classes == sum(training_args["train_datasets"].values())


def test_tiny_setup_builds_and_runs():
    config, image_processor, training_args = load_setup("tiny")
    assert config.backbone_config.num_hidden_layers == 6 and config.hidden_size == 192
    assert config.backbone_config.num_attention_heads == 3 and config.backbone_config.intermediate_size == 768
    assert config.image_size == (128, 64) and config.grid_size == (16, 8) and config.num_parts == 16
    assert config.backbone_config.layer_norm_eps == 1e-6 and config.embedding == "gelt"
    assert config.backbone_config.hidden_dropout_prob == 0.0 and config.head_dropout == 0.5
    assert training_args["backbone"] is None and training_args["per_device_train_batch_size"] == 64
    assert list(image_processor.image_mean) == [0.485, 0.456, 0.406] and image_processor.resample == 3
    model = LATransformerForReID(config).eval()
    with torch.no_grad():
        assert model.embed(torch.randn(1, 3, 128, 64)).shape == (1, 16 * 192) == (1, config.embedding_dim)


def test_tiny_training_defaults_are_the_reference_recipe(tmp_path):
    from hf_lareid.scripts.train import parse_arguments

    model_args, data_args, args, _ = parse_arguments(["--setup", "tiny", "--output_dir", str(tmp_path)])
    assert model_args.backbone == "random" and data_args.decode_once
    assert (args.optimizer, args.learning_rate, args.weight_decay, args.decay_biases_and_norms) == (
        "adamw",
        1e-3,
        0.05,
        True,
    )
    assert (args.adam_beta1, args.adam_beta2, args.max_grad_norm) == (0.9, 0.999, 0.0)
    assert args.lr_scheduler_type == "one_cycle" and args.one_cycle_pct_start(100) == pytest.approx(0.1)
    assert (args.num_train_epochs, args.per_device_train_batch_size, args.dataloader_drop_last) == (6, 64, True)


def test_small_setup_is_deit_tiny_fine_tuned_blockwise_at_256x128():
    config, image_processor, training_args = load_setup("small")
    assert config.backbone_config.num_hidden_layers == 12 and config.hidden_size == 192
    assert config.backbone_config.num_attention_heads == 3 and config.backbone_config.intermediate_size == 768
    assert config.image_size == (256, 128) and config.patch_size == (16, 16) and config.num_parts == 16
    assert (image_processor.size.height, image_processor.size.width) == (256, 128) and image_processor.resample == 3
    assert list(image_processor.image_mean) == [0.485, 0.456, 0.406]  # DeiT's ImageNet normalisation
    assert training_args["backbone"] == "facebook/deit-tiny-patch16-224"
    assert training_args["optimizer"] == "adam" and training_args["learning_rate"] == 3e-4
    assert training_args["weight_decay"] == 5e-4 and training_args["per_device_train_batch_size"] == 32
    assert training_args["unfreeze_schedule"] == "original" and training_args["num_unfreeze_blocks"] == 12


# name: (hflip, vflip, colour jitter, erasing, label smoothing, triplet weight)
RECIPES = {
    "baseline": (0.5, 0.0, 0.0, 0.0, 0.0, 0.0),  # the original code: horizontal flips only
    "improvement1": (0.5, 0.5, 0.8, 0.0, 0.0, 0.0),  # the paper's section 3.3 augmentations
    "improvement2": (0.5, 0.5, 0.8, 0.0, 0.0, 0.0),
    "small": (0.5, 0.0, 0.0, 0.0, 0.0, 0.0),  # horizontal flips only
    "tiny": (0.5, 0.0, 0.0, 0.0, 0.0, 0.0),  # the reference recipe: horizontal flips, plain cross-entropy
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_each_setup_has_its_recipe_and_no_gradient_clipping(name, tmp_path):
    from hf_lareid.scripts.train import parse_arguments

    _, data_args, training_args, _ = parse_arguments(["--setup", name, "--output_dir", str(tmp_path)])
    got = (
        data_args.hflip_p,
        data_args.vflip_p,
        data_args.color_jitter_p,
        data_args.erasing_p,
        training_args.label_smoothing,
        training_args.triplet_loss_weight,
    )
    assert got == RECIPES[name]
    assert training_args.max_grad_norm == 0.0 and data_args.decode_once == (name in ("small", "tiny"))


@pytest.mark.parametrize("name", ["baseline", "improvement1", "improvement2", "small", "tiny"])
def test_files_hold_model_fields_only(name):
    folder = setup_path(name)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "la-transformer" and config["backbone_config"]["model_type"] == "vit"
    assert not {"id2label", "label2id", "transformers_version", "dtype"} & set(config)
    assert (folder / "README.md").read_text().strip()
    processor = AutoImageProcessor.from_pretrained(folder, backend="pil")
    assert processor.do_resize and processor.do_rescale and processor.do_normalize
    assert processor.rescale_factor == pytest.approx(1 / 255)


def test_load_setup_from_a_folder(tmp_path):
    for file in ("config.json", "preprocessor_config.json", "training_args.json"):
        (tmp_path / file).write_bytes((setup_path("tiny") / file).read_bytes())
    config, _, training_args = load_setup(tmp_path)
    assert config.num_parts == 16 and training_args["learning_rate"] == 1e-3
    (tmp_path / "training_args.json").unlink()
    with pytest.raises(FileNotFoundError, match="lacks \\['training_args.json'\\]"):
        load_setup(tmp_path)


def test_a_setup_folder_whose_training_args_are_not_json_is_named(tmp_path):
    import shutil

    from hf_lareid.utils.errors import InvalidInputError

    folder = tmp_path / "my-setup"
    shutil.copytree(setup_path("tiny"), folder)
    args_file = folder / "training_args.json"
    args_file.write_text("{ not json")
    with pytest.raises(InvalidInputError, match=r"my-setup/training_args\.json is not valid JSON .*: fix it"):
        load_setup(folder)
    args_file.write_text("[1, 2]")
    with pytest.raises(InvalidInputError, match=r"training_args\.json must hold a JSON object"):
        load_setup(folder)
