"""Filling a gallery index from a data split with a model: what `lareid index` runs on one process.

```python
>>> import tempfile
>>> from hf_lareid import GalleryIndex, LATransformerConfig, LATransformerForReID, ReIDEncoder, generate_synthetic_reid
>>> from hf_lareid import load_reid_dataset
>>> from hf_lareid.tasks.index import index_split
>>> from transformers import ViTImageProcessorPil
>>> folder = tempfile.mkdtemp()
>>> people = generate_synthetic_reid(folder, num_ids=3, num_cameras=2, images_per_camera=2, image_size=(32, 16))
>>> gallery = load_reid_dataset("market1501", data_dir=people)["gallery"]
>>> config = LATransformerConfig(backbone_config={"model_type": "vit", "image_size": [32, 16], "patch_size": 8,
...     "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}, num_labels=3)
>>> processor = ViTImageProcessorPil(size={"height": 32, "width": 16})
>>> encoder = ReIDEncoder(LATransformerForReID(config).eval(), processor, runtime="torch")
>>> index = GalleryIndex(config.embedding_dim, **encoder.provenance.index_fields())
>>> index_split(index, encoder, gallery) == len(gallery) == len(index)
True
>>> index_split(index, encoder, gallery)  # everything is indexed already
0

```
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def index_split(
    index: Any,
    encoder: Any,
    split: Any,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
) -> int:
    """
    Embeds the images of `split` (a `load_reid_dataset` split) that `index` does not hold yet, by path, with
    `encoder` (a [`ReIDEncoder`]) and adds them with their person ids, cameras and paths; returns how many were added.

    With `checkpoint_dir`, the index is saved there every `checkpoint_every` images and at the end, so an interrupted
    run resumes where it stopped (`GalleryIndex.add_batches`).
    """
    if len(index):
        split = split.select(np.flatnonzero(index.unindexed(split["path"])).tolist())
    return index.add_batches(  # saves at its end even when nothing is new: a changed threshold is kept
        encoder.iter_encode(split), checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every
    )


__all__ = ["index_split"]
