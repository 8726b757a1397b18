"""The arguments of a training run: flags and typed values give the same dataclasses; who decides the schedule."""

from __future__ import annotations

import pytest

from hf_lareid.scripts.train import build_arguments, parse_arguments, setup_defaults
from hf_lareid.training import LATransformerTrainingArguments
from hf_lareid.utils.errors import InvalidInputError

PRETRAINED = "google/vit-base-patch16-224"  # only named: parsing loads no backbone


def test_typed_values_give_what_the_flags_give(tmp_path):
    values = {
        "output_dir": str(tmp_path),
        "setup": "tiny",
        "backbone": PRETRAINED,
        "num_train_epochs": 2.0,
        "dataset": ["market1501", "course"],
        "data_dir": ["a", "b"],
        "eval_on": "market1501",
        "erasing_p": 0.25,
        "warmup_steps": 0.0,
    }
    flags = []
    for name, value in values.items():
        flags += [f"--{name}", *map(str, value if isinstance(value, list) else [value])]
    parsed, typed = parse_arguments(flags), build_arguments(values)
    assert typed.model == parsed.model and typed.data == parsed.data
    assert typed.training.to_dict() == parsed.training.to_dict()
    assert typed.training.optimizer == "adamw" and typed.training.triplet_loss_weight == 0.0  # the tiny setup's
    assert typed.data.eval_dataset == "market1501"  # --eval_on; else the last --dataset, else the generated set
    assert build_arguments({"output_dir": str(tmp_path), "dataset": ["course"]}).data.eval_dataset == "course"
    assert build_arguments({"output_dir": str(tmp_path)}).data.eval_dataset == "synthetic"


def test_with_blockwise_unfreezing_the_setup_schedule_gives_way_unless_a_flag_names_one(tmp_path):
    flags = ["--output_dir", str(tmp_path), "--setup", "tiny", "--backbone", PRETRAINED]  # tiny's is one_cycle
    assert parse_arguments(flags).training.auto_lr_scheduler  # "auto": the trainer makes it constant
    values = {"output_dir": str(tmp_path), "setup": "tiny", "backbone": PRETRAINED}
    assert build_arguments(values).training.auto_lr_scheduler
    for given in (["--lr_scheduler_type", "cosine"], ["--lr_scheduler_type=cosine"], ["--lr_scheduler_ty", "cosine"]):
        training = parse_arguments(flags + given).training
        assert training.lr_scheduler_type == "cosine" and not training.auto_lr_scheduler, given
    training = build_arguments({**values, "lr_scheduler_type": "cosine"}).training
    assert training.lr_scheduler_type == "cosine" and not training.auto_lr_scheduler
    training = parse_arguments(["--output_dir", str(tmp_path)]).training  # from scratch: the setup's own schedule
    assert training.lr_scheduler_type == "one_cycle" and training.one_cycle_lr_scheduler
    assert not training.auto_lr_scheduler


def test_a_pretrained_backbone_without_setup_gets_the_small_recipe_at_a_reid_crop_its_patch_divides(tmp_path):
    from model_factories import tiny_backbone_config

    for model_type, patch, crop in (("vit", 16, (256, 128)), ("dinov2", 14, (252, 126))):
        folder = tmp_path / model_type
        tiny_backbone_config(model_type, patch_size=patch).save_pretrained(folder)
        flags = ["--output_dir", str(tmp_path / "out"), "--backbone", str(folder)]
        for arguments in (
            parse_arguments(flags),
            build_arguments({"output_dir": str(tmp_path), "backbone": str(folder)}),
        ):
            config, image_processor, _ = arguments.setup
            assert arguments.model.setup == "small" and arguments.training.optimizer == "adam"
            assert arguments.model.unfreeze_schedule == "original" and arguments.training.learning_rate == 3e-4
            assert config.image_size == crop and config.patch_size == (patch, patch)
            assert (image_processor.size.height, image_processor.size.width) == crop
    given = parse_arguments(["--output_dir", str(tmp_path), "--backbone", str(folder), "--setup", "tiny"])
    assert given.model.setup == "tiny" and given.setup[0].image_size == (128, 64)  # a named setup keeps its geometry
    assert parse_arguments(["--output_dir", str(tmp_path)]).model.setup == "tiny"  # from scratch


def test_the_backbones_own_normalisation_wins_over_the_small_setups(tmp_path):
    from model_factories import tiny_backbone_config
    from transformers import ViTImageProcessorPil

    folder = tmp_path / "vit"
    tiny_backbone_config(patch_size=16).save_pretrained(folder)
    ViTImageProcessorPil(image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(folder)
    _, image_processor, _ = parse_arguments(["--output_dir", str(tmp_path), "--backbone", str(folder)]).setup
    assert list(image_processor.image_mean) == [0.5] * 3 and list(image_processor.image_std) == [0.5] * 3
    assert (image_processor.size.height, image_processor.size.width) == (256, 128)


def test_a_setup_warmup_ratio_that_is_not_a_number_is_named():
    assert setup_defaults({"warmup_ratio": 0.1})["warmup_steps"] == 0.1
    with pytest.raises(
        InvalidInputError, match=r"warmup_ratio 'ten' of the setup's training_args\.json is not a number"
    ):
        setup_defaults({"warmup_ratio": "ten"})


def test_flags_transformers_refuses_together_are_an_input_error(tmp_path):
    """TrainingArguments' own refusal of a flag combination (a plain ValueError there) is the user's error, an
    InvalidInputError (one line from `lareid train`), from flags, typed values and the dataclass alike."""
    refused = {"lr_scheduler_type": "reduce_lr_on_plateau", "eval_strategy": "no"}
    flags = ["--output_dir", str(tmp_path)] + [item for name, value in refused.items() for item in (f"--{name}", value)]
    with pytest.raises(InvalidInputError, match="reduce_lr_on_plateau requires an eval strategy"):
        parse_arguments(flags)
    with pytest.raises(InvalidInputError, match="reduce_lr_on_plateau requires an eval strategy"):
        build_arguments({"output_dir": str(tmp_path), **refused})
    with pytest.raises(InvalidInputError, match="reduce_lr_on_plateau requires an eval strategy"):
        LATransformerTrainingArguments(str(tmp_path), **refused)
