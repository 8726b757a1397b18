"""The demo's recipe: the paper's method at small scale on generated people, with no download (`lareid demo` runs it).

Three disjoint populations of generated identities (`hf_lareid.data.generate_synthetic_reid`), all filmed by the
same cameras (each camera has its own viewpoint, background, colour cast and blur):

1. pretraining: the `tiny` ViT trains from scratch on them, every block training (no ImageNet weights offline); a
   few held-out identities of this population validate each epoch. The demo trains the `tiny` recipe (AdamW on
   every parameter, torch's one-cycle schedule, the summed per-row cross-entropy, horizontal flips, the `gelt`
   embedding) at patch 16 (8 row parts, 33 tokens) instead of the setup's patch 8 (16 rows, 129 tokens, several
   times the time per step), to stay within minutes.
2. fine-tuning: the pretrained model gets new row classifiers and is fine-tuned blockwise on them: one more encoder
   block unfreezes every epoch, with a learning-rate decay (the paper's Algorithm 1).
3. evaluation: people never trained on (the query/gallery splits of the fine-tuning folder). The untrained, the
   pretrained and the fine-tuned model are evaluated on them (Rank-1/5/10, mAP, mINP); the fine-tuning also
   evaluates on them after each epoch, for the training curves (nothing is selected on them).

Then the gallery of population 3 goes into a FAISS index (embedded by the fine-tuned model), a few queries are run,
and the pictures are drawn. Both training stages are `lareid train` runs (`hf_lareid.scripts.train`) whose arguments
are built typed (`hf_lareid.scripts.train.build_arguments`). `--quick` runs the same path with smaller
populations and fewer epochs.

The populations share the cameras because a from-scratch model of this size does not transfer to other cameras in
minutes of CPU training: pretrained on people filmed by another camera set, it stayed at chance on population 3.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datasets
    import numpy as np

    from ..embedding import FeatureSet, ReIDEncoder
    from ..evaluation import ThresholdCalibration
    from ..modeling_lareid import LATransformerForReID
    from ..retrieval import GalleryIndex
    from ..tasks.evaluate import ModelEvaluation
    from ..training import LATransformerTrainer
    from .train import ModelBuilder


SETUP = "tiny"


SETUP_DIR = "setup"  # the demo's own copy of the tiny setup, at its patch size


STAGES = ("untrained", "pretrained", "fine-tuned")


PRETRAINED_DIR = "pretrained"


FINE_TUNED_DIR = "fine-tuned"


INDEX_DIR = "gallery_index"


DATA_DIR = "data"


METRICS_FILE = "metrics.json"


PICTURES = {
    "ranked_lists": "ranked_lists.png",
    "cmc_curves": "cmc_curves.png",
    "attention": "attention_rollout.png",
    "pretraining_curves": "training_curves_pretraining.png",
    "fine_tuning_curves": "training_curves_fine_tuning.png",
}


TOP_K = 10  # gallery images per query in the ranked lists


OUTPUTS = (SETUP_DIR, DATA_DIR, PRETRAINED_DIR, FINE_TUNED_DIR, INDEX_DIR, METRICS_FILE, *PICTURES.values())


"""Every entry the demo writes into its --output_dir: all are claimed before the first step (`output_guard`)."""


@dataclasses.dataclass(frozen=True)
class DemoPlan:
    """Population sizes, epochs and the few hyper-parameters the demo sets; `--quick` changes those in `RUN_SIZES`."""

    pretraining_ids: int
    validation_ids: int  # held-out identities of the pretraining population (its per-epoch validation)
    fine_tuning_ids: int
    evaluation_ids: int
    num_cameras: int
    images_per_camera: int
    pretraining_epochs: int
    fine_tuning_epochs: int
    batch_size: int
    num_queries: int  # rows of the ranked-list picture, columns of the attention picture
    # The verification threshold is calibrated at this false-match rate on the held-out people of population 1.
    calibration_false_match_rate: float
    # The tiny setup's patch 8 takes several times the time per step of patch 16 (benchmarks/bench_train.py
    # --geometry): the demo keeps patch 16 (8 row parts) to stay within its time bound.
    patch_size: int = 16
    fine_tuning_learning_rate: float = 1e-3
    # t of Algorithm 1: the 6 blocks unfreeze over the first 6 epochs, the later epochs fine-tune the whole model.
    unfreeze_every_epochs: int = 1
    lr_decay: float = 0.8


# The DemoPlan fields that differ between the two runs: (full run, `--quick` run).
RUN_SIZES: dict[str, tuple[float, float]] = {
    "pretraining_ids": (400, 16),
    "validation_ids": (50, 4),
    "fine_tuning_ids": (250, 12),
    "evaluation_ids": (100, 8),
    "num_cameras": (4, 2),
    "images_per_camera": (4, 2),
    "pretraining_epochs": (6, 2),
    "fine_tuning_epochs": (11, 6),
    "batch_size": (64, 16),
    "num_queries": (6, 3),
    # The quick run has only a few dozen different-person pairs, too few to measure 1e-3.
    "calibration_false_match_rate": (1e-3, 0.05),
}


FULL = DemoPlan(**{name: full for name, (full, _) in RUN_SIZES.items()})


QUICK = DemoPlan(**{name: quick for name, (_, quick) in RUN_SIZES.items()})


# ---------------------------------------------------------------------------------------------------------- data
@dataclasses.dataclass(frozen=True)
class Populations:
    """The two generated folders (Market-1501 layout) holding the three populations."""

    pretraining: Path  # train split: population 1; query/gallery: its held-out validation identities
    target: Path  # train split: population 2; query/gallery: population 3


def generate_populations(data_dir: Path, plan: DemoPlan, seed: int, image_size: tuple[int, int]) -> Populations:
    """
    Draws the populations with disjoint person-id ranges and the same cameras (one `seed`); an identical earlier
    generation is reused.
    """
    from ..data import generate_synthetic_reid

    common = {
        "num_cameras": plan.num_cameras,
        "images_per_camera": plan.images_per_camera,
        "image_size": image_size,
        "seed": seed,
    }
    pretraining_ids = plan.pretraining_ids + plan.validation_ids
    pretraining = generate_synthetic_reid(
        data_dir / "pretraining", num_ids=pretraining_ids, num_train_ids=plan.pretraining_ids, first_id=1, **common
    )
    target = generate_synthetic_reid(
        data_dir / "target",
        num_ids=plan.fine_tuning_ids + plan.evaluation_ids,
        num_train_ids=plan.fine_tuning_ids,
        first_id=pretraining_ids + 1,
        **common,
    )
    return Populations(pretraining=pretraining, target=target)


@contextlib.contextmanager
def quiet_dataset_builds() -> Iterator[None]:
    """Hides the `datasets` progress bars of the Arrow builds (one per split), restoring them afterwards."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


# ------------------------------------------------------------------------------------------------------ training
def write_demo_setup(folder: Path, plan: DemoPlan) -> tuple[Any, Any, dict[str, Any]]:
    """
    The `tiny` setup with the demo's patch size, written to `folder` (config, image processor, training arguments):
    the `--setup` of both training stages, which their model cards name. Returns it as `load_setup` does.
    """
    from ..hub.setups import load_setup
    from ..utils.io import staged_replace

    config, image_processor, training_args = load_setup(SETUP)
    config.backbone_config.patch_size = plan.patch_size
    config.validate_layout()
    with staged_replace(folder) as staging:
        config.save_pretrained(staging)
        image_processor.save_pretrained(staging)
        (staging / "training_args.json").write_text(json.dumps(training_args, indent=2) + "\n", encoding="utf-8")
    return config, image_processor, training_args


def training_values(
    plan: DemoPlan, stage: str, data_dir: Path, output_dir: Path, seed: int, backbone: str, setup_dir: Path
) -> dict[str, Any]:
    """
    The `lareid train` arguments of a stage ("pretraining" or "fine-tuning"), typed, with the demo's setup folder.

    Pretraining takes the `tiny` setup's recipe (AdamW, learning rate 1e-3, torch's one-cycle schedule, the summed
    per-row cross-entropy, horizontal flips); fine-tuning sets its own learning rate and blockwise unfreezing, whose
    step decay is then the schedule. Both train in float32 on every CPU, also where bf16 autocast would be faster:
    under bf16 the from-scratch pretraining reached Rank-1 24.2 on population 3 against 31.8 in float32. Both
    evaluate every epoch, log the loss four times per epoch and save no checkpoints; `StageProgressCallback` shows
    the progress.
    """
    pretraining = stage == "pretraining"
    identities = plan.pretraining_ids if pretraining else plan.fine_tuning_ids
    steps_per_epoch = -(-identities * plan.num_cameras * plan.images_per_camera // plan.batch_size)
    values: dict[str, Any] = {
        "setup": str(setup_dir),
        "backbone": backbone,
        "dataset": ["market1501"],
        "data_dir": [str(data_dir)],
        "output_dir": str(output_dir),
        "seed": seed,
        "report_to": "none",
        "num_train_epochs": float(plan.pretraining_epochs if pretraining else plan.fine_tuning_epochs),
        "per_device_train_batch_size": plan.batch_size,
        "per_device_eval_batch_size": 128,
        "eval_strategy": "epoch",
        "logging_steps": float(max(1, steps_per_epoch // 4)),
        "save_strategy": "no",
        "disable_tqdm": True,
        "bf16": False,
    }
    if not pretraining:
        values.update(
            learning_rate=plan.fine_tuning_learning_rate,
            warmup_steps=0.0,
            blockwise_unfreeze=True,
            unfreeze_every_epochs=plan.unfreeze_every_epochs,
            lr_decay=plan.lr_decay,
        )
    return values


def with_new_heads(backbone: str, num_labels: int) -> LATransformerForReID:
    """
    The saved LA-Transformer in `backbone` with new row classifiers for `num_labels` identities (a number that
    differs from the pretraining's, so no classifier weight is kept); the bottlenecks and the backbone are kept.
    """
    from ..modeling_lareid import LATransformerForReID

    return LATransformerForReID.from_pretrained(backbone, num_labels=num_labels, ignore_mismatched_sizes=True)


def prepare_training(
    values: dict[str, Any], setup: tuple, build: ModelBuilder | None, description: str, model_name: str
) -> LATransformerTrainer:
    """
    A training stage as `lareid train` builds it from the arguments `values` and the loaded `setup`, with the model
    from `build(num_labels)` (default: `lareid train`'s), a progress bar in place of the Trainer's printed logs, and
    a model card naming the generated data.
    """
    from transformers import PrinterCallback

    from ..training.callbacks import StageProgressCallback
    from .train import build_arguments, prepare_trainer

    with quiet_dataset_builds():
        trainer = prepare_trainer(
            build_arguments(values, setup), build=build, callbacks=[StageProgressCallback(description)]
        )
    trainer.remove_callback(PrinterCallback)
    trainer.model_card_fields.update(
        model_name=model_name,
        datasets={"synthetic": trainer.model.config.num_labels},
        eval_dataset="synthetic",
        model_summary=f"The {description} stage of `lareid demo`, on generated people (hf-lareid's synthetic set).",
    )
    return trainer


def train_and_save(trainer: LATransformerTrainer) -> None:
    """Trains, then saves the model, its image processor, the Trainer state (log history) and the model card."""
    trainer.train()
    trainer.save_model()
    trainer.save_state()
    trainer.create_model_card()


# ---------------------------------------------------------------------------------------------------- evaluation
def demo_encoder(model: LATransformerForReID, image_processor: Any) -> ReIDEncoder:
    """The demo's [`ReIDEncoder`]: the default runtime in float32 (as the demo trains), no flip, batches of 128."""
    from ..embedding import ReIDEncoder

    return ReIDEncoder(model, image_processor, batch_size=128, bf16=False)


def evaluate_stage(encoder: ReIDEncoder, evaluation: datasets.DatasetDict) -> ModelEvaluation:
    """Rank-k, mAP and mINP of the encoder's model on population 3 (Market-1501 protocol), with progress bars."""
    from ..tasks.evaluate import evaluate_model

    return evaluate_model(encoder, evaluation["query"], evaluation["gallery"])


def calibrate_and_save(
    encoder: ReIDEncoder, populations: Populations, plan: DemoPlan, model_dir: Path
) -> ThresholdCalibration:
    """
    Calibrates the same-person threshold on the held-out people of population 1 (never trained on, not evaluated
    on), stores the calibration in the model config and saves the model again to `model_dir`.
    """
    import datasets

    from ..data import load_reid_dataset
    from ..tasks.evaluate import calibrate_model

    with quiet_dataset_builds():
        held_out = load_reid_dataset("market1501", data_dir=populations.pretraining, splits=["query", "gallery"])
    calibration = calibrate_model(
        encoder,
        datasets.concatenate_datasets([held_out["query"], held_out["gallery"]]),
        f"the {plan.validation_ids} held-out people of population 1 ({populations.pretraining})",
        target_false_match_rate=plan.calibration_false_match_rate,
    )
    encoder.model.config.set_verification_calibration(calibration)
    encoder.model.save_pretrained(model_dir)
    print(
        f"  same person when cosine > {calibration.threshold:.3f}: false-match rate "
        f"{calibration.false_match_rate:.2%} (target {calibration.target_false_match_rate:.2%}), true-match rate "
        f"{calibration.true_match_rate:.1%}, on {calibration.calibrated_on}"
    )
    return calibration


def build_gallery_index(
    encoder: ReIDEncoder, result: ModelEvaluation, model_dir: Path, index_dir: Path, data_dir: Path
) -> GalleryIndex:
    """
    A FAISS index of the gallery embeddings in `result` (made by `encoder`), stamped with the encoder's provenance
    (model fingerprint, embedding and runtime settings, as `lareid index` records them) and the model config's
    verification calibration, saved to `index_dir`; its paths are relative to `data_dir`, the folder the gallery was
    loaded from.
    """
    from ..data import data_root
    from ..retrieval import GalleryIndex

    gallery = result.gallery
    index = GalleryIndex(
        gallery.embeddings.shape[1],
        model_reference=str(model_dir),
        **encoder.provenance.index_fields(),
        verification_calibration=encoder.model.config.verification_calibration,
        data_dir=str(data_root(data_dir)),
        dataset="market1501",  # the demo's populations are in the Market layout
    )
    index.add(gallery.embeddings, person_ids=gallery.person_ids, camera_ids=gallery.camera_ids, paths=gallery.paths)
    index.save(index_dir)
    return index


@dataclasses.dataclass(frozen=True)
class RankedQueries:
    """
    A few queries of population 3 (image paths and person ids), their `(num_queries, top_k)` gallery ranks and the
    cosine similarities of those hits.
    """

    paths: list[str]
    person_ids: list[int]
    ranked: np.ndarray
    scores: np.ndarray


def run_queries(index: GalleryIndex, query: FeatureSet, num_queries: int, seed: int) -> RankedQueries:
    """
    Searches the index with `num_queries` random queries of population 3 and prints one line each.

    As in the evaluation (Market-1501 protocol) and torchreid's ranked lists, gallery images of the query's person
    taken by the query's camera are left out (`search_other_cameras`): the lists show matches across cameras.
    """
    import numpy as np

    from ..retrieval import search_other_cameras

    rows = np.sort(np.random.default_rng(seed).choice(len(query), size=min(num_queries, len(query)), replace=False))
    hits = search_other_cameras(index, query.embeddings[rows], TOP_K, query.camera_ids[rows], query.person_ids[rows])
    width = hits.indices.shape[1]
    for row, found in zip(rows, hits.person_ids):
        matches = np.flatnonzero(found == query.person_ids[row])
        first = f", the first at rank {matches[0] + 1}" if len(matches) else ""
        print(
            f"  query person {query.person_ids[row]} (camera {query.camera_ids[row]}): {len(matches)} of the "
            f"top {width} from other cameras are this person{first}"
        )
    return RankedQueries(
        paths=[index.resolve_path(query.paths[row]) for row in rows],  # same data folder as the gallery
        person_ids=[int(query.person_ids[row]) for row in rows],
        ranked=hits.indices,
        scores=hits.scores,
    )


# ------------------------------------------------------------------------------------------------------ pictures
def draw_pictures(
    output_dir: Path,
    results: dict[str, ModelEvaluation],
    queries: RankedQueries,
    index: GalleryIndex,
    fine_tuned: LATransformerForReID,
    image_processor: Any,
    log_histories: dict[str, list[dict[str, Any]]],
) -> None:
    """The ranked lists, CMC curves, attention rollout (of the query images) and training curves (see `PICTURES`)."""
    from ..analysis.model_pictures import plot_attention, plot_training_curves
    from ..analysis.pictures import plot_cmc_curves, plot_ranked_lists

    gallery_paths = [index.resolve_path(path) for path in index.paths]
    plot_ranked_lists(
        queries.paths,
        queries.person_ids,
        gallery_paths,
        index.person_ids,
        queries.ranked,
        output_dir / PICTURES["ranked_lists"],
        top_k=TOP_K,
        scores=queries.scores,
    )
    plot_cmc_curves({name: result.metrics for name, result in results.items()}, output_dir / PICTURES["cmc_curves"])
    plot_attention(fine_tuned, queries.paths, image_processor, output_dir / PICTURES["attention"])
    plot_training_curves(log_histories["pretraining"], output_dir / PICTURES["pretraining_curves"])
    plot_training_curves(log_histories["fine-tuning"], output_dir / PICTURES["fine_tuning_curves"])
