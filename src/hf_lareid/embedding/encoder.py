"""`ReIDEncoder`: the one object that turns person images into unit-norm vectors.

Built once from a model, its image processor and the settings that change a vector (runtime, precision, flip,
device), it embeds images, datasets or preprocessed batches, shards them across processes, keeps its runtime's
exported graph loaded, and describes itself with a [`Provenance`] that a gallery index records and checks.
`extract_features` is a thin wrapper for one-off calls (`iter_features`, its streaming twin, is deprecated).
"""

from __future__ import annotations

import itertools
import json
import os
import warnings
from collections.abc import Iterator
from typing import Any, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from ..utils.errors import InvalidInputError
from .backends.auto import RuntimeOption, choose_runtime, make_embedder, resolve_precision
from .backends.base import Embedder
from .backends.torch_backend import TorchEmbedder
from .feature_set import FeatureSet
from .fingerprint import model_fingerprint, model_forward_config, runtime_settings
from .inputs import batch_to_pixels, column, is_one_image, iter_batches
from .precision import BF16Option
from .provenance import Provenance, embedding_settings
from .sharding import ShardOption, shard_data


class ReIDEncoder:
    """
    Embeds person images with an LA-Transformer: `encode(images) -> FeatureSet`.

    Args:
        model: an [`LATransformerForReID`] (anything with `embed(pixel_values)` and an LA-Transformer `config`
            works), or a model folder / Hub id, loaded with its image processor (weights checked).
        image_processor: prepares raw images (a `ViTImageProcessorPil`, as saved with the model); not needed for
            datasets that already give `pixel_values`.
        runtime: `"auto"` (the first installed of the `AUTO_PREFERENCE` table for the device and precision),
            `"torch"`, `"onnxruntime"`, `"openvino"`, or an [`Embedder`].
        bf16: `"auto"` uses bf16 autocast where the CPU/GPU runs it fast (weights stay fp32); `True` forces it,
            `False` never. Resolved once, here, for `device`; bf16 exists in PyTorch only.
        flip: average each image's embedding with its mirror image's, then re-normalise.
        device: moves the model there first (default: where it is).
        batch_size: images per forward pass.
        cache: keep the ONNX runtimes' exported graph in the on-disk cache (`False`: a temporary export for this
            encoder only, for weights that keep changing, as in training).

    The encoder reads the model's live weights and config. With an ONNX runtime its loaded graph is reused until
    they change: every `encode` checks the storage and version counter of every parameter and buffer and the config
    fields the forward reads (switching `model.config.embedding` included), and exports again when they differ.
    Change the image processor or flip by building another encoder.

    Example:

    ```python
    >>> from hf_lareid import ReIDEncoder
    >>> encoder = ReIDEncoder("path/to/model", runtime="auto", flip=True)  # doctest: +SKIP
    >>> encoder.encode(["person1.jpg", "person2.jpg"]).embeddings.shape  # doctest: +SKIP
    (2, 10752)
    >>> encoder.provenance.embedding["flip"]  # doctest: +SKIP
    True

    docs/inference.md has runnable examples on a tiny model.
    ```
    """

    def __init__(
        self,
        model: torch.nn.Module | str | os.PathLike,
        image_processor: Any = None,
        *,
        runtime: RuntimeOption = "auto",
        bf16: BF16Option = "auto",
        flip: bool = False,
        device: Optional[torch.device | str] = None,
        batch_size: int = 32,
        cache: bool = True,
    ):
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}.")
        if isinstance(model, (str, os.PathLike)):
            from .loading import load_model_and_processor

            model, saved_processor = load_model_and_processor(model)
            image_processor = saved_processor if image_processor is None else image_processor
        if device is not None:
            model.to(device)
        self.model, self.image_processor = model, image_processor
        self.flip, self.batch_size, self.cache = bool(flip), batch_size, cache
        self.device = next(model.parameters()).device
        self.bf16 = resolve_precision(runtime, bf16, self.device)
        if isinstance(runtime, Embedder):
            self.runtime, self._embedder = runtime.name, runtime
        else:
            self.runtime = choose_runtime(runtime, self.device, self.bf16)
            self._embedder = TorchEmbedder(model, bf16=self.bf16) if self.runtime == "torch" else None
        self._fixed_embedder = self._embedder is not None
        self._token: Optional[tuple] = None
        self._model_part: Optional[Provenance] = None  # fingerprint and forward config at `_token`

    # ------------------------------------------------------------------------------------------------ model state
    def _model_token(self) -> tuple:
        """Changes whenever a weight is replaced or modified in place (the storage and version counter of every
        parameter and buffer) or a config field the forward reads changes."""
        tensors = (
            tensor
            for module in self.model.modules()
            for tensor in itertools.chain(module._parameters.values(), module._buffers.values())
            if tensor is not None
        )
        weights = tuple((tensor.data_ptr(), tensor._version) for tensor in tensors)
        return weights, json.dumps(model_forward_config(self.model), sort_keys=True)

    def _model_provenance(self) -> Provenance:
        """The model part of the provenance (fingerprint, forward config), hashed again only after the model changed.
        An exported graph of an older state is dropped then."""
        token = self._model_token()
        if token != self._token or self._model_part is None:
            part = Provenance(model_fingerprint(self.model), model_forward_config(self.model))
            if not self._fixed_embedder and (
                self._model_part is None or part.model_key() != self._model_part.model_key()
            ):
                self._embedder = None
            self._token, self._model_part = token, part
        return self._model_part

    @property
    def provenance(self) -> Provenance:
        """
        How this encoder's vectors are made, now: the model's fingerprint and forward config, the image processor's
        settings and flip, and runtime, bf16, device and torch version. Record it with the vectors
        (`GalleryIndex(dim, **encoder.provenance.index_fields())`) and compare it with `Provenance.mismatches`.
        """
        model_part = self._model_provenance()
        return Provenance(
            model_fingerprint=model_part.model_fingerprint,
            model_config=model_part.model_config,
            embedding=embedding_settings(self.image_processor, self.flip),
            runtime=runtime_settings(self.bf16, self.device, self.runtime),
        )

    @property
    def embedder(self) -> Embedder:
        """The runtime's [`Embedder`] for the model as it is now (an ONNX graph is exported or loaded on first use,
        and again after the weights or forward config changed)."""
        if self._fixed_embedder:
            return self._embedder
        model_key = self._model_provenance().model_key()
        if self._embedder is None:
            self._embedder = make_embedder(self.model, self.runtime, self.bf16, cache=self.cache, graph_key=model_key)
        return self._embedder

    # ------------------------------------------------------------------------------------------------- embedding
    def embed_pixels(self, pixel_values: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Preprocessed pixels `(batch, 3, height, width)` -> unit-norm fp32 embeddings `(batch, embedding_dim)`."""
        return self.embedder.embed(pixel_values, flip=self.flip)

    def iter_encode(
        self, data: Any, *, batch_size: Optional[int] = None, shard: ShardOption = None
    ) -> Iterator[FeatureSet]:
        """
        Streams embeddings batch by batch (for galleries larger than memory); see `encode` for `data` and `shard`.
        """
        batch_size = self.batch_size if batch_size is None else batch_size
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}.")
        data = shard_data(data, shard)
        embedder = self.embedder
        for batch in iter_batches(data, batch_size):
            size = len(next(iter(batch.values())))
            pixel_values = batch_to_pixels(batch, self.image_processor)
            embeddings = embedder.embed(pixel_values, flip=self.flip).cpu().numpy().astype(np.float32, copy=False)
            if not np.isfinite(embeddings).all():
                raise InvalidInputError(
                    "the model produced NaN/inf embeddings: check the weights and the input normalisation."
                )
            yield FeatureSet(
                embeddings=embeddings,
                person_ids=np.asarray(column(batch, "person_id", size, -1), dtype=np.int64),
                camera_ids=np.asarray(column(batch, "camera_id", size, -1), dtype=np.int64),
                paths=[str(p) for p in column(batch, "path", size, "")],
            )

    def encode(
        self,
        data: Any,
        *,
        batch_size: Optional[int] = None,
        shard: ShardOption = None,
        progress: bool = False,
        description: str = "Encoding",
    ) -> FeatureSet:
        """
        Embeds every image of `data`, batched.

        Args:
            data: a `datasets.Dataset` (with a `pixel_values` transform set, or an `image` column that the image
                processor prepares; `person_id`, `camera_id` and `path` columns are carried along), or a PIL image,
                a path, a URL, an image array, or a list/generator of these (read with `load_rgb`).
            batch_size: images per forward pass (default: the encoder's).
            shard: `(rank, world_size)`, or `"auto"` (from `torch.distributed` / torchrun's `RANK`, `WORLD_SIZE`):
                embed only this rank's contiguous shard of `data`; `hf_lareid.gather_features` joins the shards on
                rank 0 in the original order. `None` (default): everything.
            progress: show a progress bar titled `description`.

        Returns:
            A [`FeatureSet`]: `embeddings` `(num_images, embedding_dim)` float32 unit-norm, `person_ids`,
            `camera_ids` (-1 where unknown) and `paths` (of this rank's shard when sharded).
        """
        data = shard_data(data, shard)
        total = len(data) if hasattr(data, "__len__") and not is_one_image(data) else None
        parts = []
        with tqdm(total=total, desc=description, unit="img", disable=not progress) as bar:
            for part in self.iter_encode(data, batch_size=batch_size):
                parts.append(part)
                bar.update(len(part))
        return FeatureSet.concatenate(parts, embedding_dim=self.model.config.embedding_dim)

    def __call__(self, data: Any, **options: Any) -> FeatureSet:
        """`encode(data, **options)`."""
        return self.encode(data, **options)

    def __repr__(self) -> str:
        return (
            f"ReIDEncoder(runtime={self.runtime!r}, bf16={self.bf16}, flip={self.flip}, device={str(self.device)!r}, "
            f"batch_size={self.batch_size})"
        )


def iter_features(
    model: torch.nn.Module, data: Any, *, shard: ShardOption = None, **settings: Any
) -> Iterator[FeatureSet]:
    """
    Deprecated: use `ReIDEncoder(model, ...).iter_encode(data)`; removed in hf-lareid 0.2.

    `settings` are [`ReIDEncoder`]'s (`image_processor`, `runtime`, `bf16`, `flip`, `batch_size`, ...); `data` and
    `shard` as in [`ReIDEncoder.encode`]. Yields one [`FeatureSet`] per batch.
    """
    warnings.warn(
        "iter_features is deprecated and will be removed in hf-lareid 0.2: use "
        "ReIDEncoder(model, ...).iter_encode(data) instead.",
        FutureWarning,
        stacklevel=2,
    )
    return ReIDEncoder(model, **settings).iter_encode(data, shard=shard)


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
    runtime: RuntimeOption = "auto",
) -> FeatureSet:
    """
    Embeds every image of `data` once: a [`ReIDEncoder`] built for this call, then its `encode`.

    For repeated calls build one `ReIDEncoder` and keep it: it keeps an ONNX runtime's graph loaded and its
    provenance computed, where this function loads and hashes them again each time.

    Args:
        model: an [`LATransformerForReID`] (anything with `embed(pixel_values)` works).
        data, shard: as in [`ReIDEncoder.encode`].
        batch_size: images per forward pass.
        flip, bf16, image_processor, runtime: as in [`ReIDEncoder`].
        progress, description: a progress bar and its title.

    Returns:
        A [`FeatureSet`] `(num_images, embedding_dim)`.

    Example:

    ```python
    >>> features = extract_features(model, ["person1.jpg", "person2.jpg"], image_processor=processor)  # doctest: +SKIP
    >>> features.embeddings.shape  # doctest: +SKIP
    (2, 10752)
    ```
    """
    encoder = ReIDEncoder(model, image_processor, runtime=runtime, bf16=bf16, flip=flip, batch_size=batch_size)
    return encoder.encode(data, shard=shard, progress=progress, description=description)


__all__ = ["ReIDEncoder", "extract_features", "iter_features"]
