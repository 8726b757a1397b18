"""Gallery search over FAISS: embeddings + metadata + the fingerprint of the model that made them (no model needed)."""

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

__all__ = [
    "INDEX_TYPES",
    "CorruptIndexError",
    "EmbeddingSettingsMismatchError",
    "FingerprintMismatchError",
    "GalleryIndex",
    "SearchResult",
    "check_index_target",
    "is_gallery_index",
]
