"""Gallery search over FAISS (or Qdrant): embeddings + metadata + the fingerprint of the model that made them (no model needed)."""

from .camera_filter import same_camera_mask, search_other_cameras
from .index import (
    INDEX_TYPES,
    CorruptIndexError,
    EmbeddingSettingsMismatchError,
    FingerprintMismatchError,
    GalleryIndex,
    SearchResult,
    check_index_target,
    is_gallery_index,
)
from .qdrant_store import QdrantGalleryIndex

__all__ = [
    "INDEX_TYPES",
    "CorruptIndexError",
    "EmbeddingSettingsMismatchError",
    "FingerprintMismatchError",
    "GalleryIndex",
    "QdrantGalleryIndex",
    "SearchResult",
    "check_index_target",
    "is_gallery_index",
    "same_camera_mask",
    "search_other_cameras",
]
