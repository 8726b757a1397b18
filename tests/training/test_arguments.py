"""The arguments of a training run: flags and typed values give the same dataclasses; who decides the schedule."""

from __future__ import annotations

from hf_lareid.training.arguments import build_arguments, parse_arguments

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
