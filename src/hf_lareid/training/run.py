"""The training entry point shared by `examples/train.py` and `lareid train`.

`main(argv)` parses `--setup`, `--backbone`, `--dataset`/`--data_dir` and every `TrainingArguments` flag
([`hf_lareid.training.arguments.parse_arguments`]), trains with [`LATransformerTrainer`] (blockwise fine-tuning for pretrained backbones),
evaluates Rank-1/5/10, mAP and mINP on the query/gallery splits and saves the model, its image processor and a
model card to `--output_dir`.

A pretrained `--backbone` without `--setup` trains the `small` recipe (blockwise fine-tuning at a re-ID crop); with no
`--backbone` and no `--dataset` it trains the `tiny` setup from scratch on a generated set (no download):

```bash
python examples/train.py --output_dir out --max_steps 6 --per_device_train_batch_size 8
```
"""

from __future__ import annotations

import copy
import errno
import functools
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import datasets
import transformers
from transformers import TrainerCallback, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..data import default_cache_dir, load_reid_dataset, merge_training_sets
from ..data.in_memory import InMemoryReIDDataset
from ..data.transforms import build_train_transform
from ..modeling_lareid import LATransformerForReID
from ..utils.integrity import resolve_resume_checkpoint, wants_resume
from ..utils.io import is_disk_full
from ..utils.output_guard import claim_outputs
from .arguments import (
    RANDOM_BACKBONE,
    DataArguments,
    LATransformerTrainingArguments,
    ModelArguments,
    TrainArguments,
    parse_arguments,
    uses_blockwise_unfreezing,
)
from .callbacks import BlockwiseUnfreezeCallback
from .trainer import LATransformerTrainer

logger = logging.getLogger(__name__)

# Config fields of a setup that carry over when the backbone comes from a pretrained ViT.
HEAD_FIELDS = ("lambda_global", "bottleneck_dim", "head_dropout", "head_activation", "embedding")
AUGMENTATIONS = ("hflip_p", "vflip_p", "color_jitter_p", "erasing_p")


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
                num_ids=data_args.synthetic_num_ids,
                num_cameras=data_args.synthetic_num_cameras,
                images_per_camera=data_args.synthetic_images_per_camera,
                image_size=tuple(image_size),
                seed=data_args.synthetic_seed,
            )
        elif name == "course":
            options = dict(num_train_ids=data_args.course_num_train_ids, num_val_ids=data_args.course_num_val_ids)
        if data_dir is None:
            raise ValueError(f"--dataset {name} needs its folder: add --data_dir PATH (one per --dataset, in order).")
        if name != "synthetic" and not os.path.isdir(data_dir):
            raise FileNotFoundError(f"--data_dir {data_dir!r} (for --dataset {name}) is not a folder: check the path.")
        loaded[name] = load_reid_dataset(name, data_dir=data_dir, **options)
        if "train" not in loaded[name]:
            raise ValueError(f"--dataset {name} at {data_dir!r} has no train split.")
    eval_on = data_args.eval_dataset
    if eval_on not in loaded:
        raise ValueError(f"--eval_on {eval_on!r} is not one of the --dataset names {names}.")
    if not {"query", "gallery"} <= set(loaded[eval_on]):
        raise ValueError(
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
    >>> from hf_lareid.training.run import main
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
    "TRAINING_OUTPUTS",
    "ModelBuilder",
    "build_model",
    "build_trainer",
    "check_output_dir",
    "load_data",
    "main",
    "prepare_trainer",
]
