"""Evaluate a model on a query/gallery pair (`ReIDEncoder.encode` then `evaluate_reid`) or calibrate its verification
threshold on a labelled split (`ReIDEncoder.encode` then `calibrate_threshold`), in one place.

Used by the Trainer's evaluation, `lareid evaluate`, `lareid index --calibrate_on` and `lareid demo`.

Example (a tiny random model and random crops of 3 people filmed by 2 cameras):

```python
>>> import datasets, numpy as np, torch
>>> from PIL import Image
>>> from transformers import ViTImageProcessorPil
>>> from hf_lareid import LATransformerConfig, LATransformerForReID
>>> _ = torch.manual_seed(0)
>>> backbone = {"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
...             "intermediate_size": 64, "image_size": [32, 16], "patch_size": 8}
>>> model = LATransformerForReID(LATransformerConfig(backbone_config=backbone, num_labels=4)).eval()
>>> processor = ViTImageProcessorPil(size={"height": 32, "width": 16}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
>>> rng = np.random.default_rng(0)
>>> def split(n):  # n random crops of 3 people filmed by 2 cameras
...     images = [Image.fromarray(rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)) for _ in range(n)]
...     return datasets.Dataset.from_dict(
...         {"image": images, "person_id": [i % 3 + 1 for i in range(n)], "camera_id": [i % 2 + 1 for i in range(n)]}
...     )
>>> result = evaluate_model(model, split(6), split(12), image_processor=processor, runtime="torch", progress=False)
>>> result.gallery.embeddings.shape  # (gallery images, num_parts * hidden_size)
(12, 128)
>>> sorted(key for key in result.metrics if key.startswith(("rank", "m")))
['mAP', 'mINP', 'rank1', 'rank10', 'rank5']
>>> calibration = calibrate_model(model, split(12), "generated crops", target_false_match_rate=0.1,
...                               image_processor=processor, runtime="torch", progress=False)
>>> -1.0 <= calibration.threshold <= 1.0, calibration.false_match_rate <= 0.1
(True, True)
>>> calibration.calibrated_on
'generated crops: 12 images of 3 people'

```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

import torch

from ..embedding.encoder import ReIDEncoder
from ..embedding.feature_set import FeatureSet
from ..embedding.sharding import ShardOption, broadcast_object, gather_features, is_distributed, resolve_shard
from ..evaluation import ThresholdCalibration, calibrate_threshold, evaluate_reid
from ..utils.errors import InvalidInputError


def _encoder(model: torch.nn.Module | ReIDEncoder, encoder_settings: dict[str, Any]) -> ReIDEncoder:
    """`model` itself when it is an encoder (then no settings may be given), else `ReIDEncoder(model, **settings)`."""
    if not isinstance(model, ReIDEncoder):
        return ReIDEncoder(model, **encoder_settings)
    if encoder_settings:
        raise TypeError(
            f"{', '.join(sorted(encoder_settings))} given with a ReIDEncoder, which has its own settings: build the "
            "encoder with them, or pass the model instead."
        )
    return model


@dataclass
class ModelEvaluation:
    """
    Retrieval metrics of one model on one query/gallery pair, with the features they came from.

    Attributes:
        metrics: what `evaluate_reid` returns: `rank1`, `rank5`, `rank10`, `mAP`, `mINP` (fractions), `cmc`
            `(max_rank,)`, `num_queries`, `num_skipped_queries`.
        query: the query [`FeatureSet`] `(num_query, embedding_dim)` (when sharded: on rank 0; elsewhere this
            rank's shard).
        gallery: the gallery [`FeatureSet`] `(num_gallery, embedding_dim)` (likewise).
    """

    metrics: dict[str, Any]
    query: FeatureSet
    gallery: FeatureSet


def evaluate_model(
    model: torch.nn.Module | ReIDEncoder,
    query_data: Any,
    gallery_data: Any,
    *,
    protocol: str = "auto",
    progress: bool = True,
    shard: ShardOption = None,
    evaluate_options: Optional[Mapping[str, Any]] = None,
    **encoder_settings: Any,
) -> ModelEvaluation:
    """
    Embeds the query and gallery sets with one [`ReIDEncoder`] and computes Rank-k, mAP and mINP.

    Args:
        model: a [`ReIDEncoder`] (used as it is), or an [`LATransformerForReID`] (or a model folder / Hub id) that
            `ReIDEncoder(model, **encoder_settings)` wraps.
        query_data / gallery_data: `datasets.Dataset` splits with `person_id` and `camera_id` (or whatever
            [`ReIDEncoder.encode`] accepts).
        protocol: `"market1501"`, `"cuhk03"` or `"no-camera"` (see [`evaluate_reid`]); `"auto"` picks
            `"market1501"` when both sets have camera ids, else `"no-camera"` (folder-per-person sets).
        progress: progress bars (on rank 0 only when sharded).
        shard: `"auto"` under torchrun / DDP (or `(rank, world_size)` with a process group): each rank embeds its
            contiguous shard of both sets, rank 0 gathers them and computes the metrics, every rank gets them.
        evaluate_options: passed to [`evaluate_reid`]: `rerank`, `metric`, `max_rank`, ...
        encoder_settings: [`ReIDEncoder`]'s settings when `model` is not an encoder: `image_processor` (prepares
            raw images; not needed when the datasets have a `pixel_values` transform), `runtime`, `bf16`, `flip`,
            `device`, `batch_size`. Given together with an encoder they raise a `TypeError`.

    Returns:
        [`ModelEvaluation`]: the metrics with the query `(num_query, embedding_dim)` and gallery
        `(num_gallery, embedding_dim)` [`FeatureSet`]s.

    See the module docstring for an example.
    """
    rank, world_size = resolve_shard(shard)
    if world_size > 1 and not is_distributed():
        raise InvalidInputError(
            f"shard={shard!r} needs the metrics of all shards: run under torchrun (a torch.distributed process group)."
        )
    encoder = _encoder(model, encoder_settings)
    evaluate_options = dict(evaluate_options or {})
    options = {"progress": progress and rank == 0, "shard": (rank, world_size)}
    query = encoder.encode(query_data, description="Query features", **options)
    gallery = encoder.encode(gallery_data, description="Gallery features", **options)
    if world_size == 1:
        metrics = evaluate_feature_sets(query, gallery, protocol=protocol, progress=progress, **evaluate_options)
        return ModelEvaluation(metrics=metrics, query=query, gallery=gallery)
    full_query, full_gallery = gather_features(query), gather_features(gallery)
    metrics = None
    if rank == 0:
        metrics = evaluate_feature_sets(
            full_query, full_gallery, protocol=protocol, progress=progress, **evaluate_options
        )
        query, gallery = full_query, full_gallery
    return ModelEvaluation(metrics=broadcast_object(metrics), query=query, gallery=gallery)


def evaluate_feature_sets(
    query: FeatureSet, gallery: FeatureSet, *, protocol: str = "auto", progress: bool = True, **evaluate_options: Any
) -> dict[str, Any]:
    """
    [`evaluate_reid`] on two [`FeatureSet`]s, whatever made them (a model, or a hand-made baseline).

    `protocol="auto"` picks `"market1501"` when both sets have camera ids, else `"no-camera"`, where the same file
    in both sets (by path) is the query itself and is excluded. Returns `evaluate_reid`'s dict.
    """
    if protocol == "auto":
        cameras_known = (query.camera_ids >= 0).any() and (gallery.camera_ids >= 0).any()
        protocol = "market1501" if cameras_known else "no-camera"
    evaluate_options.setdefault("show_progress", progress)
    evaluate_options.setdefault("norm_tolerance", 1e-3)  # the model's embeddings are unit-norm
    if protocol == "no-camera" and all(query.paths) and all(gallery.paths):
        evaluate_options.setdefault("query_paths", query.paths)
        evaluate_options.setdefault("gallery_paths", gallery.paths)
    return evaluate_reid(
        query.embeddings,
        gallery.embeddings,
        query.person_ids,
        gallery.person_ids,
        query.camera_ids,
        gallery.camera_ids,
        protocol=protocol,
        **evaluate_options,
    )


def calibrate_model(
    model: torch.nn.Module | ReIDEncoder,
    data: Any,
    data_description: str,
    *,
    target_false_match_rate: float = 1e-3,
    progress: bool = True,
    **encoder_settings: Any,
) -> ThresholdCalibration:
    """
    Embeds a labelled split with a [`ReIDEncoder`] and calibrates the same-person threshold at
    `target_false_match_rate` on all its pairs.

    Junk (person id -1) and distractor (0) images are left out: they are nobody's pair. The result records
    `"{data_description}: N images of P people"` as the data it came from; store it with
    `model.config.set_verification_calibration(...)` or `GalleryIndex(..., verification_calibration=...)`.

    Args:
        model: a [`ReIDEncoder`], or a model that `ReIDEncoder(model, **encoder_settings)` wraps (as in
            [`evaluate_model`]).
        data: a labelled split (`person_id` column; what [`ReIDEncoder.encode`] accepts) of `num_images` images.
        data_description: names the data in the result's `calibrated_on`.
        target_false_match_rate: the false-match rate the threshold is chosen for.
        progress: a progress bar.
        encoder_settings: [`ReIDEncoder`]'s settings (`image_processor`, `runtime`, `bf16`, `flip`, `device`,
            `batch_size`) when `model` is not an encoder; a `TypeError` with an encoder.

    Returns:
        [`ThresholdCalibration`] computed on the `(num_known, embedding_dim)` embeddings of the known people.

    See the module docstring for an example.
    """
    encoder = _encoder(model, encoder_settings)
    features = encoder.encode(data, progress=progress, description="Calibration features")
    known = features.person_ids > 0
    ids = features.person_ids[known]
    return calibrate_threshold(
        features.embeddings[known],
        ids,
        target_false_match_rate,
        calibrated_on=f"{data_description}: {len(ids)} images of {len(set(ids.tolist()))} people",
    )


__all__ = ["ModelEvaluation", "calibrate_model", "evaluate_feature_sets", "evaluate_model"]
