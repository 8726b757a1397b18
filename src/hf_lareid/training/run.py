"""The training entry point shared by `examples/train.py` and `lareid train`.

`main(argv)` parses `--setup`, `--backbone`, `--dataset`/`--data_dir` and every `TrainingArguments` flag with
`HfArgumentParser`, trains with [`LATransformerTrainer`] (blockwise fine-tuning for pretrained backbones),
evaluates Rank-1/5/10, mAP and mINP on the query/gallery splits and saves the model, its image processor and a
model card to `--output_dir`.

With no `--dataset` it trains the `tiny` setup from scratch on a generated set (no download):

```bash
python examples/train.py --output_dir out --max_steps 6 --per_device_train_batch_size 8
```
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import torch
import transformers
from transformers import HfArgumentParser, SchedulerType, TrainerCallback, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..data import REID_DATASETS, default_cache_dir, load_reid_dataset, merge_training_sets
from ..data.transforms import build_train_transform
from ..features import bf16_pays
from ..file_checks import resolve_resume_checkpoint, wants_resume
from ..hub_configs import load_setup
from ..modelcard import DEFAULT_LICENSE
from ..modeling_lareid import LATransformerForReID
from .callbacks import BlockwiseUnfreezeCallback
from .trainer import LATransformerTrainer, LATransformerTrainingArguments

logger = logging.getLogger(__name__)

RANDOM_BACKBONE = "random"
# A setup's training_args.json keys that are notes for people, not arguments.
# num_unfreeze_blocks is Algorithm 1's b, the encoder's depth (0 for the from-scratch tiny setup): the backbone
# decides (see `uses_blockwise_unfreezing`).
SETUP_NOTES = ("source", "num_train_classes", "train_datasets", "lambda_global", "num_unfreeze_blocks")
# Schedules named in setups that transformers calls differently: one-cycle = warm-up then cosine annealing.
SCHEDULER_ALIASES = {"one_cycle": "cosine"}
# Config fields of a setup that carry over when the backbone comes from a pretrained ViT.
HEAD_FIELDS = ("lambda_global", "bottleneck_dim", "head_dropout", "head_activation", "embedding")


@dataclass
class ModelArguments:
    """Which setup and which backbone to train, and the blockwise fine-tuning options."""

    setup: str = field(
        default="tiny",
        metadata={
            "help": "A shipped setup (baseline, improvement1, improvement2, tiny) or a folder with config.json, "
            "preprocessor_config.json and training_args.json. Its training_args.json gives the defaults of the "
            "training flags (batch size, epochs, learning rate, unfreezing); flags on the command line win."
        },
    )
    backbone: str | None = field(
        default=None,
        metadata={
            "help": "The backbone to start from: a ViT, DeiT or DINOv2 on the Hub (google/vit-base-patch16-224) or "
            "a saved folder, or 'random' to train from scratch with the setup's architecture (the patch must divide "
            "the setup's image size). Default: the setup's backbone."
        },
    )
    blockwise_unfreeze: bool | None = field(
        default=None,
        metadata={
            "help": "Blockwise fine-tuning (the paper's Algorithm 1). Default: on for a pretrained backbone, off "
            "for --backbone random (freezing random blocks makes no sense)."
        },
    )
    unfreeze_every_epochs: int = field(default=2, metadata={"help": "t of Algorithm 1: unfreeze a block every t epochs."})
    lr_decay: float = field(default=0.8, metadata={"help": "Learning-rate factor applied at each unfreezing."})
    train_final_norm: bool = field(
        default=True, metadata={"help": "The encoder's final LayerNorm trains with the heads from the start."}
    )
    unfreeze_embeddings_with_first_block: bool = field(
        default=True, metadata={"help": "The patch/position embeddings and CLS token unfreeze with the lowest block."}
    )
    license: str = field(
        default=DEFAULT_LICENSE,
        metadata={"help": "The license of the trained weights, as the model card states it (a Hub license id)."},
    )


@dataclass
class DataArguments:
    """The training data (several sets are merged with disjoint labels) and the evaluation split."""

    dataset: list[str] = field(
        default_factory=list,
        metadata={
            "help": f"{', '.join(REID_DATASETS)}; several are merged with disjoint labels "
            "(e.g. --dataset market1501 course). Default: synthetic (generated, no download)."
        },
    )
    data_dir: list[str] = field(
        default_factory=list,
        metadata={
            "help": "One folder per --dataset, in the same order. synthetic may leave it out (it is generated "
            "under the datasets cache)."
        },
    )
    eval_on: str | None = field(
        default=None,
        metadata={"help": "The --dataset whose query/gallery splits evaluate the model. Default: the last one."},
    )
    synthetic_num_ids: int = field(default=100, metadata={"help": "synthetic: identities (half train, half query/gallery)."})
    synthetic_num_cameras: int = field(default=4, metadata={"help": "synthetic: cameras."})
    synthetic_images_per_camera: int = field(default=4, metadata={"help": "synthetic: images per identity and camera."})
    synthetic_seed: int = field(default=0, metadata={"help": "synthetic: appearance seed."})
    course_num_train_ids: int = field(default=62, metadata={"help": "course: identities in the train split."})
    course_num_val_ids: int = field(
        default=12,
        metadata={
            "help": "course: validation identities (its query/gallery splits). The paper's Improvement1 trained on "
            "them too: --course_num_train_ids 74 --course_num_val_ids 0 --eval_on market1501 gives its 825 classes."
        },
    )
    hflip_p: float | None = field(default=None, metadata={"help": "Horizontal flip probability (default 0.5)."})
    vflip_p: float | None = field(default=None, metadata={"help": "Vertical flip probability (default 0.5)."})
    color_jitter_p: float | None = field(default=None, metadata={"help": "Colour jitter probability (default 0.8)."})
    erasing_p: float | None = field(default=None, metadata={"help": "Random erasing probability (default 0: off)."})


def build_parser(prog: str | None = None) -> HfArgumentParser:
    """
    The parser of [`main`]: [`ModelArguments`], [`DataArguments`] and [`LATransformerTrainingArguments`]; `prog` names
    the command in usage lines (default: the script's name).
    """
    return HfArgumentParser((ModelArguments, DataArguments, LATransformerTrainingArguments), prog=prog)


def setup_defaults(setup_training_args: dict[str, Any], parser: argparse.ArgumentParser) -> dict[str, Any]:
    """
    Parser defaults from a setup's `training_args.json`: known flags are taken as they are, `warmup_ratio` becomes
    `warmup_steps` (a fraction means a ratio), `one_cycle` becomes `cosine` and a null backbone means `random`.
    Notes for people (`source`, ...) are skipped.
    """
    known = {action.dest for action in parser._actions}
    defaults: dict[str, Any] = {}
    for key, value in setup_training_args.items():
        if key in SETUP_NOTES or value is None and key != "backbone":
            continue
        if key == "backbone":
            defaults["backbone"] = value or RANDOM_BACKBONE
        elif key == "warmup_ratio":
            defaults["warmup_steps"] = float(value)
        elif key == "lr_scheduler_type":
            defaults[key] = SCHEDULER_ALIASES.get(value, value)
        elif key in known:
            defaults[key] = value
        else:
            logger.warning("ignoring %r of the setup's training_args.json: no such training argument", key)
    return defaults


def parse_arguments(argv: Sequence[str] | None = None, prog: str | None = None):
    """
    Parses `argv` (default `sys.argv[1:]`) into `(ModelArguments, DataArguments, LATransformerTrainingArguments,
    setup)`, where `setup` is `(config, image_processor, training_args dict)` of `--setup`.

    The setup's training_args.json supplies the defaults; on a CPU, `--bf16` defaults to whether bf16 pays there.
    With blockwise unfreezing the learning-rate schedule is constant unless `--lr_scheduler_type` is given.
    Progress bars are on unless `--disable_tqdm true` (the Trainer would otherwise turn them off whenever the
    transformers logger is quieter than WARNING, as under `lareid`).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(prog)
    pre_parser = argparse.ArgumentParser(add_help=False)
    pre_parser.add_argument("--setup", default=ModelArguments.setup)
    setup = load_setup(pre_parser.parse_known_args(argv)[0].setup)
    defaults = {"logging_steps": 10, "disable_tqdm": False}
    if not torch.cuda.is_available():
        # bf16 autocast on a CPU needs use_cpu; it pays only with AVX-512 bf16 (6x slower on AVX2-only CPUs).
        defaults.update(use_cpu=True, bf16=bf16_pays("cpu"))
    defaults.update(setup_defaults(setup[2], parser))
    parser.set_defaults(**defaults)
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    given = {arg.split("=", 1)[0].replace("-", "_") for arg in argv if arg.startswith("--")}
    if uses_blockwise_unfreezing(model_args) and "__lr_scheduler_type" not in given:
        # A setup's schedule is for its own run; with blockwise unfreezing the step decay is the schedule.
        training_args.lr_scheduler_type = SchedulerType.CONSTANT
    return model_args, data_args, training_args, setup


def _synthetic_dir(data_args: DataArguments, image_size: tuple[int, int]) -> str:
    options = (data_args.synthetic_num_ids, data_args.synthetic_num_cameras, data_args.synthetic_images_per_camera,
               tuple(image_size), data_args.synthetic_seed)  # fmt: skip
    digest = hashlib.sha256(json.dumps(options).encode()).hexdigest()[:10]
    return str(default_cache_dir() / f"synthetic-{digest}")


def load_data(data_args: DataArguments, image_size: tuple[int, int]) -> tuple[datasets.Dataset, datasets.DatasetDict, dict[str, int]]:
    """
    Loads every `--dataset`; returns `(train, eval_splits, identities)`: the merged training split, the dataset
    dict whose `query`/`gallery` evaluate, and the number of training identities per dataset.
    """
    names = list(data_args.dataset) or ["synthetic"]
    dirs = list(data_args.data_dir)
    if len(dirs) > len(names):
        raise ValueError(f"got {len(dirs)} --data_dir for {len(names)} --dataset {names}: give one folder per dataset.")
    loaded: dict[str, datasets.DatasetDict] = {}
    for index, name in enumerate(names):
        if name in loaded:
            raise ValueError(f"--dataset {name} is given twice.")
        data_dir = dirs[index] if index < len(dirs) else None
        options: dict[str, Any] = {}
        if name == "synthetic":
            data_dir = data_dir or _synthetic_dir(data_args, image_size)
            options = dict(
                num_ids=data_args.synthetic_num_ids, num_cameras=data_args.synthetic_num_cameras,
                images_per_camera=data_args.synthetic_images_per_camera, image_size=tuple(image_size),
                seed=data_args.synthetic_seed,
            )  # fmt: skip
        elif name == "course":
            options = dict(num_train_ids=data_args.course_num_train_ids, num_val_ids=data_args.course_num_val_ids)
        if data_dir is None:
            raise ValueError(f"--dataset {name} needs its folder: add --data_dir PATH (one per --dataset, in order).")
        if name != "synthetic" and not os.path.isdir(data_dir):
            raise FileNotFoundError(f"--data_dir {data_dir!r} (for --dataset {name}) is not a folder: check the path.")
        loaded[name] = load_reid_dataset(name, data_dir=data_dir, **options)
        if "train" not in loaded[name]:
            raise ValueError(f"--dataset {name} at {data_dir!r} has no train split.")
    eval_on = data_args.eval_on or names[-1]
    if eval_on not in loaded:
        raise ValueError(f"--eval_on {eval_on!r} is not one of the --dataset names {names}.")
    if not {"query", "gallery"} <= set(loaded[eval_on]):
        raise ValueError(f"--dataset {eval_on} has no query/gallery splits to evaluate on; pick another with --eval_on.")
    trains = [loaded[name]["train"] for name in names]
    train = trains[0] if len(trains) == 1 else merge_training_sets(trains, names=names)
    identities = {name: loaded[name]["train"].features["label"].num_classes for name in names}
    return train, loaded[eval_on], identities


def uses_blockwise_unfreezing(model_args: ModelArguments) -> bool:
    """`--blockwise_unfreeze` when given; else on for a pretrained backbone, off for `--backbone random`."""
    if model_args.blockwise_unfreeze is not None:
        return model_args.blockwise_unfreeze
    return model_args.backbone != RANDOM_BACKBONE


def build_model(model_args: ModelArguments, config, num_labels: int, id2label: dict[int, str]) -> LATransformerForReID:
    """`--backbone random`: the setup's architecture, randomly initialised; else `from_backbone` with the setup's head."""
    if model_args.backbone == RANDOM_BACKBONE:
        config.num_labels = num_labels
        config.id2label, config.label2id = id2label, {v: k for k, v in id2label.items()}
        return LATransformerForReID(config)
    head_fields = {name: getattr(config, name) for name in HEAD_FIELDS}
    try:
        model = LATransformerForReID.from_backbone(
            model_args.backbone, num_labels=num_labels, image_size=config.image_size, **head_fields
        )
    except OSError as error:
        raise OSError(
            f"cannot load the backbone {model_args.backbone!r}: {error}. Give a backbone on the Hub (online) or a folder "
            "saved with save_pretrained, or --backbone random to train from scratch."
        ) from error
    model.config.id2label, model.config.label2id = id2label, {v: k for k, v in id2label.items()}
    return model


def build_trainer(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: LATransformerTrainingArguments,
    model: LATransformerForReID,
    image_processor: Any,
    train: datasets.Dataset,
    eval_splits: datasets.DatasetDict,
    identities: dict[str, int],
    callbacks: Sequence[TrainerCallback] = (),
) -> LATransformerTrainer:
    """
    The trainer of [`main`] for `model`, from the parsed arguments and what [`load_data`] returned.

    Sets the training transform (with the `--*_p` augmentations) on `train`, evaluates on the query/gallery splits of
    `eval_splits` (raw images prepared by `image_processor`, as users will), adds a [`BlockwiseUnfreezeCallback`]
    where [`uses_blockwise_unfreezing`], then `callbacks`, and fills the model card fields (setup, data, backbone,
    hyper-parameters).
    """
    blockwise = uses_blockwise_unfreezing(model_args)
    unfreezing = []
    if blockwise:
        unfreezing.append(
            BlockwiseUnfreezeCallback(
                t=model_args.unfreeze_every_epochs, lr_decay=model_args.lr_decay,
                train_final_norm=model_args.train_final_norm,
                unfreeze_embeddings_with_first_block=model_args.unfreeze_embeddings_with_first_block,
            )
        )  # fmt: skip
    augmentations = {
        name: getattr(data_args, name)
        for name in ("hflip_p", "vflip_p", "color_jitter_p", "erasing_p")
        if getattr(data_args, name) is not None
    }
    # Augmentations seeded per (seed, epoch, image): a run killed at any step resumes exactly.
    seed = training_args.data_seed if training_args.data_seed is not None else training_args.seed
    train.set_transform(build_train_transform(image_processor, seed=seed, **augmentations))
    eval_on = data_args.eval_on or (data_args.dataset or ["synthetic"])[-1]
    card_training_args = {"backbone": model_args.backbone, **training_args.to_dict()}
    if blockwise:
        card_training_args.update(unfreeze_every_epochs=model_args.unfreeze_every_epochs, lr_decay=model_args.lr_decay)
    return LATransformerTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        # Evaluation reads the raw images and prepares them with the saved image processor, as users will.
        query_dataset=eval_splits["query"],
        gallery_dataset=eval_splits["gallery"],
        processing_class=image_processor,
        callbacks=[*unfreezing, *callbacks],
        model_card_fields={
            "setup": model_args.setup,
            "datasets": identities,
            "eval_dataset": eval_on,
            "base_model": None if model_args.backbone == RANDOM_BACKBONE else model_args.backbone,
            "training_args": card_training_args,
            "license": model_args.license,
        },
    )


def prepare_trainer(
    argv: Sequence[str] | None = None,
    build: Callable[..., LATransformerForReID] = build_model,
    callbacks: Sequence[TrainerCallback] = (),
    prog: str | None = None,
) -> LATransformerTrainer:
    """
    The trainer `lareid train ARGV` runs: parses `argv` (`prog` names the command in usage errors), loads the data,
    builds the model with `build(model_args, config, num_labels, id2label)` (default [`build_model`]) after seeding
    `--seed`, and wraps it with [`build_trainer`] (plus `callbacks`).
    """
    model_args, data_args, training_args, (config, image_processor, _) = parse_arguments(argv, prog)
    train, eval_splits, identities = load_data(data_args, config.image_size)
    label_names = train.features["label"].names
    set_seed(training_args.seed)  # the model's initial weights
    model = build(model_args, config, len(label_names), dict(enumerate(label_names)))
    return build_trainer(
        model_args, data_args, training_args, model, image_processor, train, eval_splits, identities, callbacks
    )


# Files a finished training run leaves in --output_dir: a folder holding one of them (or a checkpoint) holds a model.
MODEL_FILES = ("model.safetensors", "model.safetensors.index.json", "config.json", "training_args.bin")


def check_output_dir(training_args: LATransformerTrainingArguments) -> None:
    """
    Refuses (`FileExistsError`, one line) an `--output_dir` that holds a model or `checkpoint-*` folders, unless
    `--overwrite_output_dir` or `--resume_from_checkpoint` is given. With `--overwrite_output_dir` the old
    `checkpoint-*` folders (the Trainer's, with a `trainer_state.json`) are removed so that they cannot be mistaken
    for the new run's; the user's other files stay.
    """
    output_dir = Path(training_args.output_dir)
    if not output_dir.is_dir() or wants_resume(training_args.resume_from_checkpoint):
        return
    checkpoints = sorted(p for p in output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.is_dir())
    found = [name for name in MODEL_FILES if (output_dir / name).exists()] + [p.name for p in checkpoints]
    if not found:
        return
    if not training_args.overwrite_output_dir:
        raise FileExistsError(
            f"--output_dir {output_dir} already holds a model or checkpoints ({', '.join(found[:3])}"
            f"{', ...' if len(found) > 3 else ''}): pass --overwrite_output_dir to replace them, "
            "--resume_from_checkpoint to continue training, or choose a new folder."
        )
    for checkpoint in checkpoints:
        if (checkpoint / "trainer_state.json").is_file():
            shutil.rmtree(checkpoint)
            logger.info("--overwrite_output_dir: removed the old %s", checkpoint)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> dict[str, float]:
    """
    Trains, evaluates and saves an LA-Transformer; returns the final evaluation metrics (`eval_rank1`, `eval_mAP`, ...).
    `prog` names the command in usage errors (`lareid train`; default: the script's name).

    Example:

    ```python
    >>> from hf_lareid.training.run import main
    >>> metrics = main(["--output_dir", "out", "--max_steps", "6", "--per_device_train_batch_size", "8"])
    >>> sorted(k for k in metrics if k.startswith("eval_r"))  # -> ['eval_rank1', 'eval_rank10', 'eval_rank5']
    ```
    """
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.enable_explicit_format()
    check_output_dir(parse_arguments(argv, prog)[2])  # before the data is loaded: a refusal costs nothing
    trainer = prepare_trainer(argv, prog=prog)
    training_args = trainer.args
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    fields = trainer.model_card_fields
    logger.info(
        "training setup %s, backbone %s, %d identities from %s, blockwise unfreezing %s",
        fields["setup"], fields["base_model"] or RANDOM_BACKBONE, trainer.model.config.num_labels,
        list(fields["datasets"]), "on" if trainer.unfreeze_callback is not None else "off",
    )
    resume = resolve_resume_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    train_result = trainer.train(resume_from_checkpoint=resume)
    # model.safetensors, config.json and preprocessor_config.json. _internal_call: with --push_to_hub, a plain
    # save_model() would push at once, before the final evaluation (a card without Rank-1/mAP, then a second push);
    # push_to_hub() below uploads once, with the final card.
    trainer.save_model(_internal_call=True)
    trainer.log_metrics("train", train_result.metrics)
    trainer.save_metrics("train", train_result.metrics)
    metrics = trainer.evaluate()
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)
    trainer.save_state()
    trainer.create_model_card()
    if training_args.push_to_hub:
        trainer.push_to_hub()  # saves again and rewrites the card (with the final metrics), then uploads once
    return metrics


__all__ = [
    "DataArguments",
    "ModelArguments",
    "build_model",
    "build_parser",
    "build_trainer",
    "check_output_dir",
    "load_data",
    "main",
    "parse_arguments",
    "prepare_trainer",
    "setup_defaults",
    "uses_blockwise_unfreezing",
]
