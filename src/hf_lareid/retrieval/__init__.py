"""Gallery search over FAISS: embeddings + metadata + the fingerprint of the model that made them (no model needed)."""

from .index import INDEX_TYPES, CorruptIndexError, FingerprintMismatchError, GalleryIndex, SearchResult

__all__ = ["INDEX_TYPES", "CorruptIndexError", "FingerprintMismatchError", "GalleryIndex", "SearchResult"]
