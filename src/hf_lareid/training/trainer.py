"""`LATransformerTrainer`: the `transformers.Trainer` for LA-Transformer re-ID training and query/gallery evaluation."""

from __future__ import annotations

import copy
import dataclasses
import errno
import logging
import math
import os
import shutil
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, speed_metrics
from transformers.utils import SAFE_WEIGHTS_NAME

from ..data import PKSampler
from ..embedding.backends.auto import RuntimeOption
from ..embedding.encoder import ReIDEncoder
from ..hub.modelcard import write_model_card
from ..tasks.evaluate import evaluate_model
from ..utils.errors import InvalidInputError
from ..utils.integrity import check_trainer_checkpoint
from ..utils.io import is_disk_full
from .callbacks import BlockwiseUnfreezeCallback, format_unfreeze_schedule
from .learning_check import LearningCheckCallback
from .losses import batch_hard_triplet_loss, part_cross_entropy
from .training_args import LATransformerTrainingArguments, resolve_lr_scheduler
from .transform_epoch import TransformEpochCallback, epoch_transform_of

logger = logging.getLogger(__name__)

RETRIEVAL_METRICS = ("rank1", "rank5", "rank10", "mAP", "mINP")


def collate_reid_batch(examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """
    Stacks transformed examples into a model batch.

    Each example needs `pixel_values` `(3, height, width)` and a `label` (or `labels`) int. Returns
    `{"pixel_values": (batch, 3, height, width), "labels": (batch,)}`.
    """
    if not examples or "pixel_values" not in examples[0]:
        found = sorted(examples[0]) if examples else []
        raise InvalidInputError(
            f"training examples need a `pixel_values` entry, got {found}: set the training transform on the dataset "
            "(hf_lareid.data.transforms) before training."
        )
    pixel_values = torch.stack([torch.as_tensor(example["pixel_values"]) for example in examples])
    key = "labels" if "labels" in examples[0] else "label"
    if key not in examples[0]:
        raise InvalidInputError(f"training examples need a `label` entry, got {sorted(examples[0])}.")
    labels = torch.as_tensor([int(example[key]) for example in examples], dtype=torch.long)
    return {"pixel_values": pixel_values, "labels": labels}


def _labels_of(dataset: Any) -> list[int]:
    """The `label` of every row, read without running the dataset's image transform."""
    if hasattr(dataset, "with_format") and "label" in getattr(dataset, "column_names", ()):
        return list(dataset.with_format(None)["label"])
    if hasattr(dataset, "labels"):
        return list(dataset.labels)
    return [int(dataset[index]["label"]) for index in range(len(dataset))]


def triplet_features(outputs: Any, embedding: str) -> torch.Tensor:
    """
    What the triplet loss compares, `(batch, rows * hidden)`: every row's globally enhanced token `L_i` (eq. 6, the
    model's `part_features`, taken before the row heads' bottleneck and BatchNorm), all rows concatenated and the
    whole vector divided by its norm: the `"gelt"` embedding. It is `outputs.embeddings` for `embedding="gelt"`,
    also for `"bottleneck"` (BNNeck: the triplet acts before the norm, the classifiers after it, retrieval uses the
    normalised bottleneck features); `"local"` compares its own embedding (the plain row averages, each row
    normalised).
    """
    if embedding == "bottleneck":
        return F.normalize(outputs.part_features.flatten(1), dim=-1)
    return outputs.embeddings


def own_arguments(args: TrainingArguments | None) -> LATransformerTrainingArguments:
    """
    The trainer's own copy of `args` (the caller's object is never changed): a shallow copy of
    [`LATransformerTrainingArguments`]; plain `TrainingArguments` become them with this package's defaults for the
    fields they lack; `None` gives the defaults with `output_dir="trainer_output"`, as the Trainer's.
    """
    if args is None:
        return LATransformerTrainingArguments(output_dir="trainer_output")
    if isinstance(args, LATransformerTrainingArguments):
        return copy.copy(args)
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainingArguments) if f.init}
    return LATransformerTrainingArguments(**values)


class LATransformerTrainer(Trainer):
    """
    A [`Trainer`] for [`LATransformerForReID`].

    - Loss: the model's sum of per-row cross-entropies (label-smoothed when `args.label_smoothing > 0`), plus
      `args.triplet_loss_weight` times a batch-hard triplet loss on the embeddings (on the features before the
      BatchNorm with `embedding="bottleneck"`, see [`triplet_features`]; batches are then P identities x K images,
      `K = args.samples_per_identity`). Each component is logged (`ce_loss`, `triplet_loss`), and `ce_chance_fraction`,
      the mean per-row cross-entropy over `ln(num_labels)`; a [`LearningCheckCallback`] (added unless `callbacks`
      holds one) warns once when training does not learn.
    - Optimizer: Adam with L2 weight decay (`args.weight_decay`, 5e-4) on every parameter, biases and norms
      included, as the original code's `optim.Adam(model.parameters(), weight_decay=5e-4)`; `args.optimizer="adamw"`
      for AdamW (decoupled decay, none on biases and norms), `"hf"` for the Trainer's `--optim`. Every parameter is
      in the optimizer, trainable or not, so freezing can change during training (see
      [`BlockwiseUnfreezeCallback`]) and checkpoints always resume. `lr_scheduler_type="auto"` is decided here, by
      [`resolve_lr_scheduler`]: constant with a [`BlockwiseUnfreezeCallback`] among `callbacks`, linear otherwise.
    - Gradient accumulation is exact for the cross-entropy: the losses are batch means and the Trainer divides
      them by the accumulation steps (the batch-hard triplet mines within each micro-batch).
    - Evaluation: with `query_dataset` and `gallery_dataset`, `evaluate()` embeds both with
      [`evaluate_model`] (the package's one feature-extraction loop) and reports `eval_rank1`, `eval_rank5`,
      `eval_rank10`, `eval_mAP` and `eval_mINP` (usable as `metric_for_best_model="rank1"`). Under DDP each process computes the same metrics.
      It runs PyTorch eager on the live weights unless `eval_runtime` names another runtime.

    Args:
        query_dataset, gallery_dataset: `datasets.Dataset`s with `person_id` and `camera_id` columns and either an
            evaluation transform giving `pixel_values` or an `image` column that `processing_class` prepares.
        model_card_fields: extra fields for [`write_model_card`] (`setup`, `datasets`, `eval_dataset`, ...) used by
            `create_model_card` (called by `push_to_hub`).
        eval_runtime: what embeds the query and gallery sets in `evaluate()`: `"torch"` (default: no export),
            `"auto"`, `"onnxruntime"` or `"openvino"` (an export of the current weights made for each evaluation,
            not cached: see `benchmarks/bench_runtimes.py --fresh_weights` for where that pays).
        other arguments: as [`Trainer`]; `data_collator` defaults to [`collate_reid_batch`].

    Example:

    ```python
    >>> from transformers import ProgressCallback, ViTImageProcessorPil
    >>> from hf_lareid import LATransformerConfig, LATransformerForReID
    >>> from hf_lareid.data import build_train_transform, generate_synthetic_reid, load_reid_dataset
    >>> from hf_lareid.training import LATransformerTrainingArguments
    >>> folder = generate_synthetic_reid("people", num_ids=8, num_cameras=2, images_per_camera=2, image_size=(64, 32))
    >>> data = load_reid_dataset("market1501", data_dir=folder, cache_dir="cache")
    >>> processor = ViTImageProcessorPil(size={"height": 64, "width": 32}, resample=3)
    >>> model = LATransformerForReID(LATransformerConfig(num_labels=4, backbone_config={
    ...     "model_type": "vit", "image_size": [64, 32], "patch_size": 16, "hidden_size": 32,
    ...     "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}))
    >>> args = LATransformerTrainingArguments("out", max_steps=2, per_device_train_batch_size=4, use_cpu=True,
    ...                                       report_to="none", save_strategy="no", disable_tqdm=False)
    >>> trainer = LATransformerTrainer(model=model, args=args,
    ...                                train_dataset=data["train"].with_transform(build_train_transform(processor)),
    ...                                query_dataset=data["query"], gallery_dataset=data["gallery"],
    ...                                processing_class=processor)
    >>> trainer.remove_callback(ProgressCallback)  # quiet: no progress bars or printed logs in this example
    >>> _ = trainer.train()
    >>> metrics = trainer.evaluate()
    >>> sorted(name for name in metrics if name.startswith("eval_rank"))
    ['eval_rank1', 'eval_rank10', 'eval_rank5']
    ```
    """

    # The losses below are batch means: the Trainer must divide them by the accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        model: nn.Module | None = None,
        args: TrainingArguments | None = None,
        *,
        query_dataset: Any = None,
        gallery_dataset: Any = None,
        model_card_fields: dict[str, Any] | None = None,
        eval_runtime: RuntimeOption = "torch",
        **kwargs: Any,
    ):
        if (query_dataset is None) != (gallery_dataset is None):
            raise InvalidInputError("pass both query_dataset and gallery_dataset (or neither) to LATransformerTrainer.")
        kwargs.setdefault("data_collator", collate_reid_batch)
        if query_dataset is not None:
            # The Trainer refuses an eval_strategy without an eval_dataset; evaluate() uses query/gallery instead.
            kwargs.setdefault("eval_dataset", query_dataset)
        callbacks = kwargs.get("callbacks") or []
        self.learning_check = next((cb for cb in callbacks if isinstance(cb, LearningCheckCallback)), None)
        if self.learning_check is None:
            self.learning_check = LearningCheckCallback()
            kwargs["callbacks"] = callbacks = [*callbacks, self.learning_check]
        args = own_arguments(args)
        epoch_transform = epoch_transform_of(kwargs.get("train_dataset"))
        if epoch_transform is not None:  # a seeded augmentation follows the epochs (exact resume)
            kwargs["callbacks"] = callbacks = [*callbacks, TransformEpochCallback(epoch_transform, args)]
        self.unfreeze_callback = next((cb for cb in callbacks if isinstance(cb, BlockwiseUnfreezeCallback)), None)
        resolve_lr_scheduler(args, blockwise=self.unfreeze_callback is not None)
        if self.unfreeze_callback is not None:
            if args.one_cycle_lr_scheduler:
                raise InvalidInputError(
                    "lr_scheduler_type one_cycle sets the learning rate of every step itself, so blockwise unfreezing "
                    "cannot decay it: use lr_scheduler_type auto (constant) or a transformers schedule."
                )
            if args.ddp_find_unused_parameters is False:
                raise InvalidInputError(
                    "BlockwiseUnfreezeCallback needs ddp_find_unused_parameters=True: frozen blocks get no gradient."
                )
            # Frozen blocks get no gradient; DDP must look for unused parameters (even with activation checkpointing).
            args.ddp_find_unused_parameters = True
        super().__init__(model=model, args=args, **kwargs)
        self.query_dataset = query_dataset
        self.gallery_dataset = gallery_dataset
        self.model_card_fields = dict(model_card_fields or {})
        self.eval_runtime = eval_runtime
        self._loss_components: dict[str, torch.Tensor] = {}
        self._loss_component_steps = 0

    # ----------------------------------------------------------------- optimisation
    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """
        The optimizer over ALL parameters (trainable or not, see the class docstring).

        - `"adam"`: `torch.optim.Adam(params, weight_decay=args.weight_decay)` in one group, so every parameter,
          biases and norms included, gets the coupled L2 decay: the original LA-Transformer code's
          `optim.Adam(model.parameters(), weight_decay=5e-4, lr=lr)`.
        - `"adamw"`: `torch.optim.AdamW` with decoupled weight decay and the usual two groups: no decay on biases
          and norm weights (the Trainer's `get_decay_parameter_names`); with `args.decay_biases_and_norms` one group,
          every parameter decayed (a plain `torch.optim.AdamW(model.parameters(), weight_decay=...)`).
        - `"hf"`: the Trainer's own `--optim`.
        """
        name = self.args.optimizer
        if self.optimizer is not None or name == "hf":
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        named = list(opt_model.named_parameters())
        if name == "adam" or self.args.decay_biases_and_norms:
            groups = [{"params": [p for _, p in named], "weight_decay": self.args.weight_decay}]
        else:
            decay_names = set(self.get_decay_parameter_names(opt_model))
            groups = [
                {"params": [p for n, p in named if n in decay_names], "weight_decay": self.args.weight_decay},
                {"params": [p for n, p in named if n not in decay_names], "weight_decay": 0.0},
            ]
        optimizer_cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        self.optimizer = optimizer_cls(
            [group for group in groups if group["params"]],
            lr=self.args.learning_rate,
            betas=(self.args.adam_beta1, self.args.adam_beta2),
            eps=self.args.adam_epsilon,
        )
        return self.optimizer

    def create_scheduler(
        self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None
    ) -> torch.optim.lr_scheduler.LRScheduler:
        """
        The Trainer's schedule, or with `lr_scheduler_type="one_cycle"` torch's `OneCycleLR` over `num_training_steps`
        (stepped every optimizer step): `max_lr=args.learning_rate`, `pct_start=args.one_cycle_pct_start(...)`, torch's
        other defaults (cosine, `div_factor` 25, `final_div_factor` 1e4, `cycle_momentum` on).
        """
        if self.lr_scheduler is not None or not self.args.one_cycle_lr_scheduler:
            return super().create_scheduler(num_training_steps, optimizer)
        self.lr_scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer if optimizer is None else optimizer,
            max_lr=self.args.learning_rate,
            total_steps=num_training_steps,
            pct_start=self.args.one_cycle_pct_start(num_training_steps),
        )
        self._created_lr_scheduler = True
        return self.lr_scheduler

    def _get_train_sampler(self, train_dataset=None):
        """Identity-balanced P x K batches when the triplet loss is on; the Trainer's random sampler otherwise."""
        if self.args.triplet_loss_weight <= 0:
            return super()._get_train_sampler(train_dataset)
        dataset = self.train_dataset if train_dataset is None else train_dataset
        batch_size, instances = self._train_batch_size, self.args.samples_per_identity
        if batch_size % instances:
            raise InvalidInputError(
                f"with the triplet loss, per_device_train_batch_size ({batch_size}) must be a multiple of "
                f"samples_per_identity ({instances}): batches hold P identities x K images."
            )
        return PKSampler(
            _labels_of(dataset),
            num_identities=batch_size // instances,
            num_instances=instances,
            seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed,
        )

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ):
        """Per-row cross-entropy (+ weighted batch-hard triplet); both are batch means (see `loss_is_scaled_for_ga`)."""
        labels = inputs["labels"]
        label_smoothing, triplet_weight = self.args.label_smoothing, self.args.triplet_loss_weight
        outputs = model(pixel_values=inputs["pixel_values"], labels=labels if label_smoothing == 0 else None)
        ce_loss = outputs.loss if label_smoothing == 0 else part_cross_entropy(outputs.logits, labels, label_smoothing)
        components = {"ce_loss": ce_loss}
        loss = ce_loss
        if triplet_weight > 0:
            embedding = self.accelerator.unwrap_model(model).config.embedding
            triplet = batch_hard_triplet_loss(
                triplet_features(outputs, embedding), labels, margin=self.args.triplet_margin
            )
            components["triplet_loss"] = triplet
            loss = loss + triplet_weight * triplet
        if model.training:
            num_parts, num_labels = outputs.logits.shape[1:]
            if num_labels >= 2:  # the cross-entropy per row as a fraction of chance, ln(num_labels)
                components["ce_chance_fraction"] = ce_loss / (num_parts * math.log(num_labels))
            for name, value in components.items():
                self._loss_components[name] = self._loss_components.get(name, 0.0) + value.detach().float()
            self._loss_component_steps += 1
            self.learning_check.record(
                float(ce_loss.detach()) / num_parts,
                num_labels,
                float(components["triplet_loss"].detach()) if "triplet_loss" in components else None,
                self.args.triplet_margin if triplet_weight > 0 else None,
            )
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds the mean of each loss component since the last log to the training logs."""
        if "loss" in logs and self._loss_component_steps:
            for name, total in self._loss_components.items():
                mean = self.accelerator.reduce(total / self._loss_component_steps, reduction="mean")
                logs[name] = round(float(mean), 4)
            self._loss_components, self._loss_component_steps = {}, 0
        super().log(logs, start_time)

    # ----------------------------------------------------------------- checkpoints
    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        """
        The Trainer's checkpoint save; when it fails (a full disk), the `checkpoint-N` folder it was writing is
        removed, so that no half-written checkpoint is left for the next run to refuse or resume from, and the error
        names that folder.
        """
        folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        existed = os.path.isdir(folder)
        try:
            super()._save_checkpoint(model, trial)
        except Exception as error:
            if not existed and self.args.should_save:
                shutil.rmtree(folder, ignore_errors=True)
            if is_disk_full(error):
                raise OSError(
                    errno.ENOSPC,
                    f"No space left on device while saving the checkpoint {folder} (removed): free space there, "
                    "or train into another --output_dir",
                ) from error
            raise

    def _load_weights(self, checkpoint_dir: str, model: nn.Module | None = None) -> bool:
        """
        Loads `checkpoint_dir`'s weights through `from_pretrained`; False when the Trainer's own loader must run.

        transformers 5 saves ViT weights under their legacy names (`vit.encoder.layer.0...`) and renames them when
        `from_pretrained` loads; the Trainer's resume and best-model loading call `load_state_dict` directly, which
        silently leaves every encoder block at its current value. Loading a copy through `from_pretrained` applies
        the renaming.
        """
        if self.is_deepspeed_enabled or self.is_fsdp_enabled:
            return False
        if not os.path.isfile(os.path.join(checkpoint_dir, SAFE_WEIGHTS_NAME)):
            return False
        target = self.accelerator.unwrap_model(self.model if model is None else model)
        loaded = type(target).from_pretrained(checkpoint_dir, config=target.config)
        target.load_state_dict(loaded.state_dict(), strict=True)
        return True

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        check_trainer_checkpoint(resume_from_checkpoint)  # one clear line naming a damaged or missing file
        if not self._load_weights(resume_from_checkpoint, model):
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        logger.info("Loading best model from %s (score: %s).", self.state.best_model_checkpoint, self.state.best_metric)
        if not self._load_weights(self.state.best_model_checkpoint):
            super()._load_best_model()

    # ----------------------------------------------------------------- evaluation
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """
        Query/gallery retrieval metrics when the trainer has `query_dataset` and `gallery_dataset`.

        Returns `{prefix}_rank1`, `_rank5`, `_rank10`, `_mAP`, `_mINP` (fractions in [0, 1]) plus timings, on every
        rank; under DDP each rank embeds its contiguous shard of both sets and rank 0 computes the metrics. With an
        explicit `eval_dataset`, or without query/gallery sets, this is the Trainer's loss evaluation.
        """
        if eval_dataset is not None or self.query_dataset is None:
            return super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        self._memory_tracker.start()
        start_time = time.time()
        result = evaluate_model(
            self.evaluation_encoder(),
            self.query_dataset,
            self.gallery_dataset,
            progress=not self.args.disable_tqdm,
            shard="auto" if self.args.world_size > 1 else None,  # DDP: each rank embeds its shard, rank 0 gathers
        )
        results, num_samples = result.metrics, len(self.query_dataset) + len(self.gallery_dataset)
        metrics = {f"{metric_key_prefix}_{name}": float(results[name]) for name in RETRIEVAL_METRICS}
        metrics.update(speed_metrics(metric_key_prefix, start_time, num_samples=num_samples))
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        self._memory_tracker.stop_and_update_metrics(metrics)
        return metrics

    def evaluation_encoder(self) -> ReIDEncoder:
        """
        The [`ReIDEncoder`] of `evaluate()`: the unwrapped model with `processing_class`, the eval batch size,
        `args.eval_flip`, `args.bf16` and `eval_runtime`; an ONNX runtime's graph is a temporary export of today's
        weights (`cache=False`: they change every evaluation, so nothing goes to the ONNX cache).
        """
        return ReIDEncoder(
            self.accelerator.unwrap_model(self.model),
            self.processing_class,
            runtime=self.eval_runtime,
            bf16=bool(self.args.bf16),
            flip=self.args.eval_flip,
            batch_size=self.args.per_device_eval_batch_size,
            cache=False,
        )

    # ----------------------------------------------------------------- model card
    def latest_eval_metrics(self) -> dict[str, float]:
        """The last logged retrieval metrics (`eval_rank1`, ...), or `{}`."""
        for entry in reversed(self.state.log_history):
            if any(key.endswith("_rank1") for key in entry):
                return dict(entry)
        return {}

    def create_model_card(self, **kwargs: Any) -> None:
        """
        Writes hf-lareid's model card (`README.md`) with [`write_model_card`] instead of the Trainer's generic one,
        so `push_to_hub` publishes the card with the model-index (Rank-1/mAP), setup and data. Runs on the main
        process only; the Trainer's keyword arguments (`license`, `model_name`, ...) override the card's fields.
        """
        if not self.is_world_process_zero():
            return
        fields = {
            "metrics": self.latest_eval_metrics(),
            "training_args": self.args.to_dict(),
            **self.model_card_fields,
        }
        for key in ("license", "model_name"):
            if kwargs.get(key):
                fields[key] = kwargs[key]
        if self.unfreeze_callback is not None and "unfreeze_schedule" not in fields:
            num_blocks = len(self.accelerator.unwrap_model(self.model).backbone_groups().blocks)
            num_epochs = max(1, int(round(self.state.num_train_epochs or self.args.num_train_epochs)))
            fields["unfreeze_schedule"] = format_unfreeze_schedule(
                self.unfreeze_callback.schedule(num_blocks, num_epochs), num_blocks
            )
        write_model_card(self.args.output_dir, **fields)


__all__ = ["LATransformerTrainer", "collate_reid_batch", "triplet_features"]
