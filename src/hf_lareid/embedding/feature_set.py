"""`FeatureSet`: embeddings with what is known of their images (person ids, camera ids, paths)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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


__all__ = ["FeatureSet"]
