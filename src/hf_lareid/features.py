"""The one batched embedding loop: images or a dataset in, unit-norm embeddings (plus ids, cameras, paths) out.

Used by the Trainer's evaluation, the `lareid-embedding` pipeline, `lareid evaluate` and `lareid index`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Literal, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from .distributed import ShardOption, resolve_shard, shard_bounds
from .image_utils import load_rgb

logger = logging.getLogger(__name__)

BF16Option = Union[bool, Literal["auto"]]


def bf16_pays(device: torch.device | str = "cpu") -> bool:
    """
    Whether bf16 autocast speeds this device up.

    On a GPU: when it supports bf16. On a CPU: only with AVX-512 bf16 instructions; without them bf16 autocast is
    several times slower than fp32 (see docs/original-code.md).
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported())
    return False


def resolve_bf16(bf16: BF16Option, device: torch.device | str = "cpu") -> bool:
    """`"auto"` -> bf16 where it pays (see `bf16_pays`); `True` forces it (with a warning where it is slow); `False` never."""
    if bf16 == "auto":
        return bf16_pays(device)
    if bf16 is True and not bf16_pays(device):
        logger.warning("bf16 autocast forced on %s, where it is usually slower than fp32.", torch.device(device))
    return bool(bf16)


def autocast_context(enabled: bool, device: torch.device | str = "cpu") -> contextlib.AbstractContextManager:
    """`torch.autocast` to bf16 when `enabled` (weights stay fp32), else a no-op context."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


@torch.no_grad()
def embed_pixels(
    model: torch.nn.Module, pixel_values: torch.Tensor, flip: bool = False, bf16: bool = False
) -> torch.Tensor:
    """
    Unit-norm fp32 embeddings of a preprocessed batch: `(batch, 3, height, width) -> (batch, embedding_dim)`.

    `flip` averages the embeddings of the images and their mirror images and re-normalises (test-time
    augmentation). `bf16` runs the model under bf16 autocast.
    """
    device = next(model.parameters()).device
    pixel_values = pixel_values.to(device=device, dtype=torch.float32)
    with autocast_context(bf16, device):
        embeddings = model.embed(pixel_values).float()
        if flip:
            embeddings = embeddings + model.embed(pixel_values.flip(-1)).float()
    return F.normalize(embeddings, dim=-1)


@dataclass
class FeatureSet:
    """
    Embeddings with what is known of their images; every array has one row per image.

    Attributes:
        embeddings: `(num_images, embedding_dim)` float32, unit norm.
        person_ids: `(num_images,)` int64, -1 where unknown.
        camera_ids: `(num_images,)` int64, -1 where unknown.
        paths: image paths (`""` where unknown, e.g. in-memory images).
    """

    embeddings: np.ndarray
    person_ids: np.ndarray
    camera_ids: np.ndarray
    paths: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.embeddings)

    @classmethod
    def concatenate(cls, parts: list[FeatureSet], embedding_dim: int) -> FeatureSet:
        """Joins batches; an empty list gives an empty `(0, embedding_dim)` set."""
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return cls(np.zeros((0, embedding_dim), dtype=np.float32), empty, empty.copy(), [])
        return cls(
            embeddings=np.concatenate([p.embeddings for p in parts]),
            person_ids=np.concatenate([p.person_ids for p in parts]),
            camera_ids=np.concatenate([p.camera_ids for p in parts]),
            paths=[path for p in parts for path in p.paths],
        )


def _batch_to_pixels(batch: dict[str, Any], image_processor: Any) -> torch.Tensor:
    """A dict of columns (with `pixel_values`, or `image` to preprocess) -> `(batch, 3, height, width)`."""
    if "pixel_values" in batch:
        pixels = batch["pixel_values"]
        return pixels if isinstance(pixels, torch.Tensor) else torch.stack([torch.as_tensor(p) for p in pixels])
    if "image" not in batch:
        raise ValueError(f"a batch needs an 'image' or 'pixel_values' column, got columns {sorted(batch)}.")
    if image_processor is None:
        raise ValueError(
            "raw images need an image processor: pass image_processor=AutoImageProcessor.from_pretrained(MODEL_DIR, backend='pil')."
        )
    images = [load_rgb(image) for image in batch["image"]]
    return image_processor(images, return_tensors="pt")["pixel_values"]


def _column(batch: dict[str, Any], name: str, size: int, default: Any) -> list:
    values = batch.get(name)
    return list(values) if values is not None else [default] * size


def _is_one_image(data: Any) -> bool:
    """A single PIL image, path, URL or `(height, width[, channels])` array, rather than a collection of them."""
    return isinstance(data, (Image.Image, str, os.PathLike)) or isinstance(data, np.ndarray) and data.ndim <= 3


def _iter_batches(data: Any, batch_size: int) -> Iterator[dict[str, Any]]:
    """Batches of columns from a `datasets.Dataset` (its transforms applied) or from any iterable of images/paths."""
    if hasattr(data, "iter") and hasattr(data, "column_names"):
        yield from data.iter(batch_size=batch_size)
        return
    if _is_one_image(data):
        data = [data]
    iterator = iter(data)
    while chunk := list(islice(iterator, batch_size)):
        paths = [str(item) if isinstance(item, (str, os.PathLike)) else "" for item in chunk]
        yield {"image": chunk, "path": paths}


def shard_data(data: Any, shard: ShardOption) -> Any:
    """
    This rank's contiguous shard of `data` (see `hf_lareid.distributed.shard_bounds`): a `datasets.Dataset` is
    `select`ed, a list/tuple/array sliced; `shard=None` returns `data` unchanged.
    """
    rank, world_size = resolve_shard(shard)
    if world_size == 1:
        return data
    if _is_one_image(data):
        data = [data]
    if not hasattr(data, "__len__"):
        raise ValueError(
            "sharding needs data with a length (a dataset, list or array), not a generator: pass list(data)."
        )
    start, stop = shard_bounds(len(data), rank, world_size)
    if hasattr(data, "select") and hasattr(data, "column_names"):
        return data.select(range(start, stop))
    return data[start:stop]


def iter_features(
    model: torch.nn.Module,
    data: Any,
    batch_size: int = 32,
    flip: bool = False,
    bf16: BF16Option = "auto",
    image_processor: Any = None,
    shard: ShardOption = None,
    runtime: Any = "auto",
) -> Iterator[FeatureSet]:
    """
    Streams embeddings batch by batch (for galleries larger than memory); see `extract_features`.

    `shard=(rank, world_size)` or `"auto"` embeds only this rank's contiguous shard of `data`.
    """
    from .runtimes import make_embedder

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    data = shard_data(data, shard)
    embedder = make_embedder(model, runtime, bf16)  # the torch embedder runs the model in eval mode itself
    for batch in _iter_batches(data, batch_size):
        size = len(next(iter(batch.values())))
        pixel_values = _batch_to_pixels(batch, image_processor)
        embeddings = embedder.embed(pixel_values, flip=flip).cpu().numpy().astype(np.float32, copy=False)
        if not np.isfinite(embeddings).all():
            raise ValueError("the model produced NaN/inf embeddings: check the weights and the input normalisation.")
        yield FeatureSet(
            embeddings=embeddings,
            person_ids=np.asarray(_column(batch, "person_id", size, -1), dtype=np.int64),
            camera_ids=np.asarray(_column(batch, "camera_id", size, -1), dtype=np.int64),
            paths=[str(p) for p in _column(batch, "path", size, "")],
        )


def extract_features(
    model: torch.nn.Module,
    data: Any,
    batch_size: int = 32,
    flip: bool = False,
    bf16: BF16Option = "auto",
    image_processor: Any = None,
    progress: bool = True,
    description: str = "Extracting features",
    shard: ShardOption = None,
    runtime: Any = "auto",
) -> FeatureSet:
    """
    Embeds every image of `data` with `model.embed`, batched, with a progress bar.

    Args:
        model: an [`LATransformerForReID`] (anything with `embed(pixel_values)` works).
        data: a `datasets.Dataset` (with a `pixel_values` transform set, or an `image` column that
            `image_processor` prepares; `person_id`, `camera_id` and `path` columns are carried along), or a
            PIL image, a path, a URL, an image array, or a list/generator of these (read with `load_rgb`).
        batch_size: images per forward pass.
        flip: average each image's embedding with its mirror image's, then re-normalise.
        bf16: `"auto"` uses bf16 autocast where the CPU/GPU runs it fast (weights stay fp32); `True`/`False` force.
        image_processor: prepares raw images (a `ViTImageProcessorPil` saved with the model).
        shard: `(rank, world_size)`, or `"auto"` (from `torch.distributed` / torchrun's `RANK`, `WORLD_SIZE`):
            embed only this rank's contiguous shard of `data`; `hf_lareid.gather_features` joins the shards on
            rank 0 in the original order. `None` (default): everything.
        runtime: `"auto"` (default: the fastest installed runtime for the device, see `hf_lareid.runtimes`),
            `"torch"`, `"onnxruntime"`, `"openvino"`, or an `Embedder` from `hf_lareid.runtimes.make_embedder`.

    Returns:
        A [`FeatureSet`]: `embeddings` `(num_images, embedding_dim)` float32 unit-norm, `person_ids`,
        `camera_ids` (-1 where unknown) and `paths` (of this rank's shard when sharded).

    Example:

    ```python
    >>> features = extract_features(model, dataset["query"], batch_size=64)
    >>> features.embeddings.shape  # -> (3368, 10752)
    >>> # under `torchrun --nproc_per_node 4 script.py`: each rank embeds a quarter, rank 0 gets them all, in order
    >>> features = gather_features(extract_features(model, dataset["query"], shard="auto"))
    ```
    """
    data = shard_data(data, shard)
    total = len(data) if hasattr(data, "__len__") and not _is_one_image(data) else None
    parts = []
    with tqdm(total=total, desc=description, unit="img", disable=not progress) as bar:
        for part in iter_features(
            model, data, batch_size=batch_size, flip=flip, bf16=bf16, image_processor=image_processor, runtime=runtime
        ):
            parts.append(part)
            bar.update(len(part))
    return FeatureSet.concatenate(parts, embedding_dim=model.config.embedding_dim)


EMBEDDING_CONFIG_FIELDS = ("embedding", "lambda_global", "image_size", "patch_size", "hidden_size", "num_parts")
# Fields that came with the backbones beyond ViT, with their ViT values: a field enters the fingerprint only when it
# differs, so the fingerprints of ViT models (and the gallery indexes that store them) stay what they were.
BACKBONE_CONFIG_FIELDS = {"backbone_type": "vit", "num_special_tokens": 1, "global_token": "cls"}


def model_fingerprint(model: torch.nn.Module) -> str:
    """
    sha256 of the backbone weights and of the config fields that shape the embedding (the backbone type, its special
    tokens and which is the global token included): two models with the same fingerprint embed images identically.
    A gallery index stores it to refuse queries from another model.
    """
    digest = hashlib.sha256()
    config = model.config
    fields = {name: getattr(config, name) for name in EMBEDDING_CONFIG_FIELDS}
    for name, vit_value in BACKBONE_CONFIG_FIELDS.items():
        if getattr(config, name, vit_value) != vit_value:
            fields[name] = getattr(config, name)
    digest.update(json.dumps(fields, sort_keys=True, default=list).encode())
    # Only the backbone shapes the embedding: swapping the row classifiers keeps the fingerprint.
    for name, tensor in sorted(model.state_dict().items()):
        if name.startswith("vit."):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# Image processor settings that change the pixels a model sees, hence its embeddings.
PROCESSOR_EMBEDDING_FIELDS = (
    "do_resize",
    "size",
    "resample",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
)


def embedding_settings(image_processor: Any, flip: bool) -> dict[str, Any]:
    """
    What changes an embedding besides the model: `flip` and the image processor's resize/rescale/normalise settings
    (JSON values). A gallery index records it and refuses queries embedded otherwise.
    """
    settings: dict[str, Any] = {"flip": bool(flip)}
    if image_processor is not None:
        values = image_processor.to_dict() if hasattr(image_processor, "to_dict") else vars(image_processor)
        for name in PROCESSOR_EMBEDDING_FIELDS:
            value = values.get(name)
            settings[f"processor_{name}"] = int(value) if name == "resample" and value is not None else value
    return json.loads(json.dumps(settings, sort_keys=True, default=str))


def runtime_settings(bf16: bool, device: torch.device | str = "cpu", runtime: str | None = None) -> dict[str, Any]:
    """
    What changes embeddings only slightly (bf16 vs fp32: cosine ~0.99998; another runtime: ~1e-7): bf16, the torch
    version, the device type, and the runtime (`"torch"`, `"onnxruntime"`, `"openvino"`) when given.
    """
    settings = {"bf16": bool(bf16), "torch": torch.__version__, "device": torch.device(device).type}
    return settings if runtime is None else {**settings, "runtime": runtime}


__all__ = [
    "FeatureSet",
    "autocast_context",
    "bf16_pays",
    "embed_pixels",
    "embedding_settings",
    "extract_features",
    "iter_features",
    "model_fingerprint",
    "resolve_bf16",
    "runtime_settings",
    "shard_data",
]
