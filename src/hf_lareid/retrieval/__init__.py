"""Gallery search over FAISS (or Qdrant): embeddings + metadata + the fingerprint of the model that made them (no model needed).

Modules: `backend` (what every index backend provides, the record they share), `faiss_index` ([`GalleryIndex`]),
`qdrant_index` ([`QdrantGalleryIndex`]), `storage` (the on-disk format, checksums, recovery, `load_index`),
`retention` (which entries a removal selects), `camera_filter` (the same-camera rule of re-ID searches).
"""

from .backend import EmbeddingSettingsMismatchError, FingerprintMismatchError, GalleryBackend, SearchResult
from .camera_filter import same_camera_mask, search_other_cameras
from .faiss_index import INDEX_TYPES, GalleryIndex
from .qdrant_index import QdrantGalleryIndex
from .storage import CorruptIndexError, IndexWriteError, check_index_target, is_gallery_index, load_index

__all__ = [
    "INDEX_TYPES",
    "CorruptIndexError",
    "EmbeddingSettingsMismatchError",
    "FingerprintMismatchError",
    "GalleryBackend",
    "GalleryIndex",
    "IndexWriteError",
    "QdrantGalleryIndex",
    "SearchResult",
    "check_index_target",
    "is_gallery_index",
    "load_index",
    "same_camera_mask",
    "search_other_cameras",
]
