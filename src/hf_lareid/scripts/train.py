"""The training script behind `lareid train` and `examples/train.py`: its flags, their parsing, and the run.

A run reads its flags into [`ModelArguments`] (setup, backbone, blockwise fine-tuning), [`DataArguments`] (data sets,
augmentations) and [`LATransformerTrainingArguments`] (every `TrainingArguments` flag), with the defaults of the
`--setup`'s `training_args.json` ([`parse_arguments`]; [`build_arguments`] takes the same values typed, for Python
callers such as the demo). [`main`] then loads the data, builds the model (`from_backbone` for a pretrained
`--backbone`, random for `random`), trains with [`LATransformerTrainer`] (blockwise fine-tuning for pretrained
backbones), evaluates Rank-1/5/10, mAP and mINP on the query/gallery splits and saves the model, its image processor
and a model card to `--output_dir`.

A pretrained `--backbone` without `--setup` trains the `small` recipe (blockwise fine-tuning at a re-ID crop); with no
`--backbone` and no `--dataset` it trains the `tiny` setup from scratch on a generated set (no download):

```bash
python examples/train.py --output_dir out --max_steps 6 --per_device_train_batch_size 8
accelerate launch -m hf_lareid.scripts.train --backbone facebook/deit-tiny-patch16-224 --dataset market1501 \
    --data_dir /data/Market-1501-v15.09.15 --output_dir la-deit-tiny
```

Example:

```python
>>> from hf_lareid.scripts.train import build_arguments, parse_arguments
>>> arguments = parse_arguments(["--output_dir", "out", "--max_steps", "6"])
>>> arguments.training.max_steps, arguments.model.backbone  # the tiny setup, from scratch
(6, 'random')
>>> build_arguments({"output_dir": "out", "max_steps": 6}).training.max_steps
6
```
"""

from __future__ import annotations

import argparse
import copy
import errno
import functools
import hashlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import datasets
import torch
import transformers
from transformers import HfArgumentParser, PreTrainedConfig, TrainerCallback, set_seed
from transformers.image_processing_base import ImageProcessingMixin
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..configuration_lareid import LATransformerConfig, reid_crop_size
from ..data import REID_DATASETS, default_cache_dir, load_reid_dataset, merge_training_sets
from ..data.in_memory import InMemoryReIDDataset
from ..data.transforms import build_train_transform
from ..embedding.precision import bf16_pays
from ..hub.modelcard import DEFAULT_LICENSE
from ..hub.setups import load_setup
from ..modeling_lareid import LATransformerForReID
from ..training.callbacks import UNFREEZE_SCHEDULES, BlockwiseUnfreezeCallback
from ..training.trainer import LATransformerTrainer
from ..training.training_args import LATransformerTrainingArguments
from ..utils.errors import InvalidInputError
from ..utils.integrity import resolve_resume_checkpoint, wants_resume
from ..utils.io import is_disk_full
from ..utils.output_guard import claim_outputs

logger = logging.getLogger(__name__)

RANDOM_BACKBONE = "random"
# A setup's training_args.json keys that are notes for people, not arguments.
# num_unfreeze_blocks is Algorithm 1's b, the encoder's depth (0 for the from-scratch tiny setup): the backbone
# decides (see `uses_blockwise_unfreezing`).
SETUP_NOTES = ("source", "num_train_classes", "train_datasets", "lambda_global", "num_unfreeze_blocks")
# Config fields of a setup that carry over when the backbone comes from a pretrained ViT.
HEAD_FIELDS = ("lambda_global", "bottleneck_dim", "head_dropout", "head_activation", "embedding")
AUGMENTATIONS = ("hflip_p", "vflip_p", "color_jitter_p", "erasing_p")


@dataclass
class ModelArguments:
    """Which setup and which backbone to train, and the blockwise fine-tuning options."""

    setup: str | None = field(
        default=None,
        metadata={
            "help": "A shipped setup (baseline, improvement1, improvement2, small, tiny) or a folder with config.json, "
            "preprocessor_config.json and training_args.json. Its training_args.json gives the defaults of the "
            "training flags (batch size, epochs, learning rate, unfreezing); flags on the command line win. "
            "Default: tiny (from scratch); with a pretrained --backbone, small (the pretrained recipe) at a re-ID "
            "crop that the backbone's patch divides (256x128, 252x126 at patch 14)."
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
    unfreeze_schedule: str = field(
        default="algorithm1",
        metadata={
            "help": "algorithm1: the paper's Algorithm 1 (epoch 0 trains the top block; the rate decays at each "
            "unfreezing until every block trains). original: the original code's notebook (epoch 0 trains the top "
            "two blocks; the rate decays every t epochs, also after; the embeddings are never frozen).",
            "choices": list(UNFREEZE_SCHEDULES),
        },
    )
    unfreeze_every_epochs: int = field(
        default=2, metadata={"help": "t of Algorithm 1: unfreeze a block every t epochs."}
    )
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
    synthetic_num_ids: int = field(
        default=100, metadata={"help": "synthetic: identities (half train, half query/gallery)."}
    )
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
    # Without a setup value: the original code's augmentation, horizontal flips only.
    hflip_p: float = field(
        default=0.5, metadata={"help": "Horizontal flip probability (default: the setup's, else 0.5)."}
    )
    vflip_p: float = field(default=0.0, metadata={"help": "Vertical flip probability (default: the setup's, else 0)."})
    color_jitter_p: float = field(
        default=0.0, metadata={"help": "Colour jitter probability (default: the setup's, else 0)."}
    )
    erasing_p: float = field(
        default=0.0, metadata={"help": "Random erasing probability (default: the setup's, else 0)."}
    )
    decode_once: bool = field(
        default=False,
        metadata={
            "help": "Decode and resize every training image once into memory (uint8, height x width x 3 bytes each), "
            "then only augment at each step; default: the setup's (on for tiny)."
        },
    )

    @property
    def dataset_names(self) -> list[str]:
        """The `--dataset` names, in order; `["synthetic"]` when none is given."""
        return list(self.dataset) or ["synthetic"]

    @property
    def eval_dataset(self) -> str:
        """The `--dataset` whose query/gallery splits evaluate: `--eval_on`, else the last one."""
        return self.eval_on or self.dataset_names[-1]


class TrainArguments(NamedTuple):
    """Everything a training run is built from: the three argument dataclasses and the loaded `--setup`."""

    model: ModelArguments
    data: DataArguments
    training: LATransformerTrainingArguments
    setup: tuple[LATransformerConfig, Any, dict[str, Any]]  # (config, image processor, training_args dict)


ARGUMENT_CLASSES = (ModelArguments, DataArguments, LATransformerTrainingArguments)


def build_parser(prog: str | None = None) -> HfArgumentParser:
    """
    The parser of [`parse_arguments`]: [`ModelArguments`], [`DataArguments`] and [`LATransformerTrainingArguments`];
    `prog` names the command in usage lines (default: the script's name).
    """
    return HfArgumentParser(ARGUMENT_CLASSES, prog=prog)


def setup_defaults(setup_training_args: Mapping[str, Any]) -> dict[str, Any]:
    """
    Argument defaults from a setup's `training_args.json`: known arguments are taken as they are, `warmup_ratio`
    becomes `warmup_steps` (a fraction means a ratio) and a null backbone means `random`.
    Notes for people (`source`, ...) are skipped.
    """
    known = {f.name for cls in ARGUMENT_CLASSES for f in fields(cls) if f.init}
    defaults: dict[str, Any] = {}
    for key, value in setup_training_args.items():
        if key in SETUP_NOTES or value is None and key != "backbone":
            continue
        if key == "backbone":
            defaults["backbone"] = value or RANDOM_BACKBONE
        elif key == "warmup_ratio":
            try:
                defaults["warmup_steps"] = float(value)
            except (TypeError, ValueError):
                raise InvalidInputError(
                    f"warmup_ratio {value!r} of the setup's training_args.json is not a number: give a fraction such as 0.1."
                ) from None
        elif key in known:
            defaults[key] = value
        else:
            logger.warning("ignoring %r of the setup's training_args.json: no such training argument", key)
    return defaults


def run_defaults(setup_training_args: Mapping[str, Any]) -> dict[str, Any]:
    """
    The defaults of a training run: progress bars on (the Trainer would otherwise turn them off whenever the
    transformers logger is quieter than WARNING, as under `lareid`), a log every 10 steps, on a CPU `--bf16` only
    where bf16 pays; then the setup's ([`setup_defaults`]).
    """
    defaults: dict[str, Any] = {"logging_steps": 10, "disable_tqdm": False}
    if not torch.cuda.is_available():
        # bf16 autocast on a CPU needs use_cpu; it pays only with AVX-512 bf16 (it is slower than fp32 without).
        defaults.update(use_cpu=True, bf16=bf16_pays("cpu"))
    defaults.update(setup_defaults(setup_training_args))
    return defaults


def _with_defaults(parse: Callable[[dict[str, Any]], tuple], setup: tuple) -> TrainArguments:
    """`parse(defaults)` with the [`run_defaults`] of `setup`, as a [`TrainArguments`]."""
    defaults = run_defaults(setup[2])
    model_args, data_args, training_args = parse(defaults)
    if uses_blockwise_unfreezing(model_args) and "lr_scheduler_type" in defaults:
        # A setup's schedule is for its own run: with blockwise unfreezing "auto" (the step decay) is the default.
        del defaults["lr_scheduler_type"]
        model_args, data_args, training_args = parse(defaults)
    return TrainArguments(model_args, data_args, training_args, setup)


FROM_SCRATCH_SETUP = "tiny"
PRETRAINED_SETUP = "small"


def load_run_setup(setup: str | None, backbone: str | None) -> tuple[str, tuple]:
    """
    `(setup name, loaded setup)` of a run: `setup` when given; else `tiny` without a backbone or with `random`, and
    for a pretrained `backbone` the `small` recipe at a re-ID crop its patch divides (`reid_crop_size`: 256x128 at
    patch 16, 252x126 at patch 14), its config and image processor resized to it, normalising with the backbone's own
    mean/std where its folder or Hub repository has a `preprocessor_config.json`.
    """
    if setup is not None:
        return setup, load_setup(setup)
    if backbone in (None, RANDOM_BACKBONE):
        return FROM_SCRATCH_SETUP, load_setup(FROM_SCRATCH_SETUP)
    config, image_processor, training_args = load_setup(PRETRAINED_SETUP)
    try:
        patch_size = PreTrainedConfig.get_config_dict(backbone)[0].get("patch_size")
    except OSError:
        patch_size = None  # build_model says why the backbone cannot be loaded
    processor_fields = image_processor.to_dict()
    if patch_size is not None:
        height, width = reid_crop_size(patch_size)
        config.backbone_config.image_size = [height, width]
        config.backbone_config.patch_size = patch_size
        processor_fields["size"] = {"height": height, "width": width}
    try:
        normalisation = ImageProcessingMixin.get_image_processor_dict(backbone)[0]
    except OSError:
        normalisation = {}  # no preprocessor_config.json: ImageNet's mean/std, the setup's
    for name in ("image_mean", "image_std"):
        if normalisation.get(name) is not None:
            processor_fields[name] = list(normalisation[name])
    image_processor = type(image_processor).from_dict(processor_fields)
    return PRETRAINED_SETUP, (config, image_processor, training_args)


def parse_arguments(argv: Sequence[str] | None = None, prog: str | None = None) -> TrainArguments:
    """
    Parses `argv` (default `sys.argv[1:]`) into a [`TrainArguments`] `(model, data, training, setup)`, where `setup`
    is `(config, image_processor, training_args dict)` of `--setup`; `prog` names the command in usage errors.
    `--output_dir` is required (a usage error, exit 2, without it).

    The defaults are the [`run_defaults`] (the setup's training_args.json among them); flags on the command line win.
    With blockwise unfreezing the learning-rate schedule is "auto" (constant) unless `--lr_scheduler_type` is given.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(arg.split("=", 1)[0] in ("--output_dir", "--output-dir") for arg in argv):
        # TrainingArguments would default to ./trainer_output; a run without a named folder is a usage error.
        build_parser(prog).error("the following arguments are required: --output_dir")
    pre_parser = argparse.ArgumentParser(add_help=False)
    pre_parser.add_argument("--setup", default=ModelArguments.setup)
    pre_parser.add_argument("--backbone", default=ModelArguments.backbone)
    known = pre_parser.parse_known_args(argv)[0]
    name, setup = load_run_setup(known.setup, known.backbone)

    def parse(defaults: dict[str, Any]) -> tuple:
        parser = build_parser(prog)
        parser.set_defaults(**defaults, setup=name)
        *parsed, unknown = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
        if unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")  # exit 2, as argparse does
        return tuple(parsed)

    return _with_defaults(parse, setup)


def build_arguments(values: Mapping[str, Any], setup: tuple | None = None) -> TrainArguments:
    """
    The [`TrainArguments`] that [`parse_arguments`] gives for the flags `values` (argument names to typed values,
    e.g. `{"output_dir": "out", "num_train_epochs": 2}`), with the same defaults. `setup` is `values["setup"]`
    already loaded (loaded here when not given).
    """
    name = values.get("setup")
    if setup is None:
        name, setup = load_run_setup(name, values.get("backbone"))
    values = {**values, "setup": name}
    return _with_defaults(lambda defaults: build_parser().parse_dict({**defaults, **values}), setup)


def uses_blockwise_unfreezing(model_args: ModelArguments) -> bool:
    """`--blockwise_unfreeze` when given; else on for a pretrained backbone, off for `--backbone random`."""
    if model_args.blockwise_unfreeze is not None:
        return model_args.blockwise_unfreeze
    return model_args.backbone != RANDOM_BACKBONE


def _synthetic_dir(data_args: DataArguments, image_size: tuple[int, int]) -> str:
    options = (
        data_args.synthetic_num_ids,
        data_args.synthetic_num_cameras,
        data_args.synthetic_images_per_camera,
        tuple(image_size),
        data_args.synthetic_seed,
    )
    digest = hashlib.sha256(json.dumps(options).encode()).hexdigest()[:10]
    return str(default_cache_dir() / f"synthetic-{digest}")


def load_data(
    data_args: DataArguments, image_size: tuple[int, int]
) -> tuple[datasets.Dataset, datasets.DatasetDict, dict[str, int]]:
    """
    Loads every `--dataset`; returns `(train, eval_splits, identities)`: the merged training split, the dataset
    dict whose `query`/`gallery` evaluate, and the number of training identities per dataset.
    """
    names = data_args.dataset_names
    dirs = list(data_args.data_dir)
    if len(dirs) > len(names):
        raise InvalidInputError(
            f"got {len(dirs)} --data_dir for {len(names)} --dataset {names}: give one folder per dataset."
        )
    loaded: dict[str, datasets.DatasetDict] = {}
    for index, name in enumerate(names):
        if name in loaded:
            raise InvalidInputError(f"--dataset {name} is given twice.")
        data_dir = dirs[index] if index < len(dirs) else None
        options: dict[str, Any] = {}
        if name == "synthetic":
            data_dir = data_dir or _synthetic_dir(data_args, image_size)
            options = dict(
                num_ids=data_args.synthetic_num_ids,
                num_cameras=data_args.synthetic_num_cameras,
                images_per_camera=data_args.synthetic_images_per_camera,
                image_size=tuple(image_size),
                seed=data_args.synthetic_seed,
            )
        elif name == "course":
            options = dict(num_train_ids=data_args.course_num_train_ids, num_val_ids=data_args.course_num_val_ids)
        if data_dir is None:
            raise InvalidInputError(
                f"--dataset {name} needs its folder: add --data_dir PATH (one per --dataset, in order)."
            )
        if name != "synthetic" and not os.path.isdir(data_dir):
            raise FileNotFoundError(f"--data_dir {data_dir!r} (for --dataset {name}) is not a folder: check the path.")
        loaded[name] = load_reid_dataset(name, data_dir=data_dir, **options)
        if "train" not in loaded[name]:
            raise InvalidInputError(f"--dataset {name} at {data_dir!r} has no train split.")
    eval_on = data_args.eval_dataset
    if eval_on not in loaded:
        raise InvalidInputError(f"--eval_on {eval_on!r} is not one of the --dataset names {names}.")
    if not {"query", "gallery"} <= set(loaded[eval_on]):
        raise InvalidInputError(
            f"--dataset {eval_on} has no query/gallery splits to evaluate on; pick another with --eval_on."
        )
    trains = [loaded[name]["train"] for name in names]
    train = trains[0] if len(trains) == 1 else merge_training_sets(trains, names=names)
    identities = {name: loaded[name]["train"].features["label"].num_classes for name in names}
    return train, loaded[eval_on], identities


# The model for `num_labels` training identities (prepare_trainer names the labels).
ModelBuilder = Callable[[int], LATransformerForReID]


def build_model(model_args: ModelArguments, config, num_labels: int) -> LATransformerForReID:
    """
    `--backbone random`: the setup's architecture (`config`, copied), randomly initialised; else `from_backbone` with
    the setup's head and image size.
    """
    if model_args.backbone == RANDOM_BACKBONE:
        config = copy.deepcopy(config)
        config.num_labels = num_labels
        return LATransformerForReID(config)
    head_fields = {name: getattr(config, name) for name in HEAD_FIELDS}
    try:
        return LATransformerForReID.from_backbone(
            model_args.backbone, num_labels=num_labels, image_size=config.image_size, **head_fields
        )
    except OSError as error:
        raise OSError(
            f"cannot load the backbone {model_args.backbone!r}: {error}. Give a backbone on the Hub (online) or a folder "
            "saved with save_pretrained, or --backbone random to train from scratch."
        ) from error


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

    Sets the training transform (with the `--*_p` augmentations) on `train` (or decodes `train` once into memory with
    `--decode_once`), evaluates on the query/gallery splits of
    `eval_splits` (raw images prepared by `image_processor`, as users will), adds a [`BlockwiseUnfreezeCallback`]
    where [`uses_blockwise_unfreezing`], then `callbacks`, and fills the model card fields (setup, data, backbone,
    hyper-parameters).
    """
    blockwise = uses_blockwise_unfreezing(model_args)
    unfreezing = []
    if blockwise:
        unfreezing.append(
            BlockwiseUnfreezeCallback(
                t=model_args.unfreeze_every_epochs,
                lr_decay=model_args.lr_decay,
                train_final_norm=model_args.train_final_norm,
                unfreeze_embeddings_with_first_block=model_args.unfreeze_embeddings_with_first_block,
                schedule=model_args.unfreeze_schedule,
            )
        )
    augmentations = {name: getattr(data_args, name) for name in AUGMENTATIONS}
    # Augmentations seeded per (seed, epoch, image): a run killed at any step resumes exactly.
    seed = training_args.data_seed if training_args.data_seed is not None else training_args.seed
    transform = build_train_transform(image_processor, seed=seed, **augmentations)
    if data_args.decode_once:
        train = InMemoryReIDDataset(train, transform)
    else:
        train.set_transform(transform)
    trainer = LATransformerTrainer(
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
            "eval_dataset": data_args.eval_dataset,
            "base_model": None if model_args.backbone == RANDOM_BACKBONE else model_args.backbone,
            "license": model_args.license,
        },
    )
    # Read after the trainer resolved lr_scheduler_type "auto": the card states the schedule that runs.
    card_training_args = {"backbone": model_args.backbone, **trainer.args.to_dict(), **augmentations}
    if blockwise:
        card_training_args.update(
            unfreeze_schedule=model_args.unfreeze_schedule,
            unfreeze_every_epochs=model_args.unfreeze_every_epochs,
            lr_decay=model_args.lr_decay,
        )
    trainer.model_card_fields["training_args"] = card_training_args
    return trainer


def prepare_trainer(
    arguments: TrainArguments, build: ModelBuilder | None = None, callbacks: Sequence[TrainerCallback] = ()
) -> LATransformerTrainer:
    """
    The trainer of a training run (`lareid train ARGV` runs `prepare_trainer(parse_arguments(ARGV))`): loads the
    data, seeds `--seed`, builds the model with `build(num_labels)` (default: [`build_model`] with the setup's
    config), names its labels after the training identities, and wraps it with [`build_trainer`] (plus `callbacks`).
    """
    model_args, data_args, training_args, (config, image_processor, _) = arguments
    train, eval_splits, identities = load_data(data_args, config.image_size)
    label_names = train.features["label"].names
    set_seed(training_args.seed)  # the model's initial weights
    model = (build or functools.partial(build_model, model_args, config))(len(label_names))
    model.config.id2label = dict(enumerate(label_names))
    model.config.label2id = {name: label for label, name in model.config.id2label.items()}
    return build_trainer(
        model_args, data_args, training_args, model, image_processor, train, eval_splits, identities, callbacks
    )


# Files a finished training run leaves in --output_dir: a folder holding one of them (or a checkpoint) holds a model.
MODEL_FILES = ("model.safetensors", "model.safetensors.index.json", "config.json", "training_args.bin")
# Every file a run writes into --output_dir besides its checkpoint-* folders: claimed before it starts
# (`output_guard`), so that a project's own README.md or config.json is never replaced.
TRAINING_OUTPUTS = (
    *MODEL_FILES,
    "preprocessor_config.json",
    "README.md",
    "train_results.json",
    "eval_results.json",
    "all_results.json",
    "trainer_state.json",
)


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
    With no data set named, `tiny` from scratch on generated people (no download); the run prints its metrics table:

    >>> import contextlib, io
    >>> from pathlib import Path
    >>> from hf_lareid.scripts.train import main
    >>> arguments = ["--output_dir", "out", "--max_steps", "6", "--per_device_train_batch_size", "8", "--disable_tqdm", "true"]
    >>> with contextlib.redirect_stdout(io.StringIO()):  # the printed tables and the final line
    ...     metrics = main(arguments)
    >>> sorted(key for key in metrics if key.startswith(("eval_rank", "eval_mAP")))
    ['eval_mAP', 'eval_rank1', 'eval_rank10', 'eval_rank5']
    >>> all((Path("out") / name).is_file() for name in ("model.safetensors", "config.json", "README.md"))
    True
    ```
    """
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.enable_explicit_format()
    arguments = parse_arguments(argv, prog)
    check_output_dir(arguments.training)  # before the data is loaded: a refusal costs nothing
    output_dir = Path(arguments.training.output_dir)
    outputs = [output_dir / name for name in TRAINING_OUTPUTS]
    with claim_outputs(outputs, fix="choose another --output_dir (a new folder is safest)"):
        try:
            return _train_and_save(arguments)
        except Exception as error:
            if is_disk_full(error) and str(output_dir) not in str(error):
                raise OSError(
                    errno.ENOSPC,
                    f"No space left on device while writing to {output_dir}: free space there, or train into another "
                    "--output_dir",
                ) from error
            raise


def _train_and_save(arguments: TrainArguments) -> dict[str, float]:
    """The work of [`main`] once its outputs are claimed: train, save, evaluate, write the card (and push)."""
    trainer = prepare_trainer(arguments)
    training_args = trainer.args
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    fields = trainer.model_card_fields
    logger.info(
        "training setup %s, backbone %s, %d identities from %s, blockwise unfreezing %s",
        fields["setup"],
        fields["base_model"] or RANDOM_BACKBONE,
        trainer.model.config.num_labels,
        list(fields["datasets"]),
        "on" if trainer.unfreeze_callback is not None else "off",
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
    "RANDOM_BACKBONE",
    "TRAINING_OUTPUTS",
    "DataArguments",
    "ModelArguments",
    "ModelBuilder",
    "TrainArguments",
    "build_arguments",
    "build_model",
    "build_parser",
    "build_trainer",
    "check_output_dir",
    "load_data",
    "load_run_setup",
    "main",
    "parse_arguments",
    "prepare_trainer",
    "run_defaults",
    "setup_defaults",
    "uses_blockwise_unfreezing",
]


if __name__ == "__main__":  # python -m hf_lareid.scripts.train, accelerate launch -m hf_lareid.scripts.train
    main()
