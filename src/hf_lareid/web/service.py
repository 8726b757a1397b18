"""What the web app (`lareid serve`, `spaces/app.py`) does, without the page: search a gallery index, compare two
images, draw a query's attention rollout. Every answer is plain JSON (paths, scores, ids, verdicts), as the
Gradio API endpoints return it; every bad input is a `WebAppError` whose message the page shows as it is.
A gallery image is named by the key `"file"`, never `"path"`: Gradio takes any dict with a `"path"` for a file
to send and replaces it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..embedding import ReIDEncoder, bf16_option
from ..embedding.loading import load_model_and_processor
from ..retrieval import GalleryIndex, search_other_cameras
from ..tasks.search import open_gallery_index
from ..utils.errors import InvalidInputError
from ..utils.images import load_rgb

UNKNOWN = -1  # a camera or person id the caller does not know
SAME_PERSON, DIFFERENT_PEOPLE = "same person", "different people"
NO_THRESHOLD = "no calibrated threshold"
UNREADABLE = "{name} is not a readable image (damaged, or not an image): upload a JPEG or PNG."


class WebAppError(InvalidInputError):
    """A bad input or an unusable index, said in one line for the page (no traceback)."""


@dataclass
class ReIDService:
    """
    A gallery index with the model that embedded it, ready to answer the web app's questions.

    Attributes:
        index: the [`GalleryIndex`].
        encoder: the [`ReIDEncoder`] that embeds the queries as the index's gallery was (its model's fingerprint,
            its image processor and flip are the ones the index records).
        index_dir: where the index was loaded from.
        model_reference: the model folder or Hub id in use.
    """

    index: GalleryIndex
    encoder: ReIDEncoder
    index_dir: Path
    model_reference: str

    @property
    def model(self) -> Any:
        """The [`LATransformerForReID`] whose fingerprint the index records."""
        return self.encoder.model

    @property
    def image_processor(self) -> Any:
        """The model's image processor."""
        return self.encoder.image_processor

    @property
    def flip(self) -> bool:
        """Whether queries are flipped (as the index records its gallery was)."""
        return self.encoder.flip

    @classmethod
    def load(
        cls,
        index_dir: str | os.PathLike,
        model: str | os.PathLike | None = None,
        runtime: str = "auto",
        data_dir: str | os.PathLike | None = None,
    ) -> ReIDService:
        """
        Loads the index and its model (`model` overrides the one it records; `data_dir` says where the indexed images
        are now, if their folder moved). A model with another fingerprint, or another image processor or model config
        than the index records, is refused; queries are flipped when the gallery was. `runtime` embeds the queries
        (see `hf_lareid.embedding.backends`).
        """
        index, model_reference = open_gallery_index(index_dir, model, data_dir, need_images=True)
        loaded, image_processor = load_model_and_processor(model_reference)
        flip = bool((index.embedding_settings or {}).get("flip", False))
        encoder = ReIDEncoder(loaded, image_processor, runtime=runtime, bf16=bf16_option(False), flip=flip)
        index.check_provenance(encoder.provenance)
        return cls(index, encoder, Path(index_dir), model_reference)

    # ------------------------------------------------------------------------------------------------- queries
    def _embed(self, image: Any, name: str) -> np.ndarray:
        """`(1, embedding_dim)` unit-norm embedding of one image (a path or a PIL image)."""
        return self.encoder.encode([_read_image(image, name)]).embeddings

    def search(self, image: Any, top_k: int = 10, query_camera: int = UNKNOWN, query_person: int = UNKNOWN) -> dict:
        """
        The `top_k` gallery images most similar to `image`, best first.

        With `query_camera` (not -1) the query's camera is left out as the re-ID protocol does
        (`search_other_cameras`): that person's images from that camera when `query_person` is known (a gallery
        pick), else every image from that camera.

        Returns:
            `{"query_camera", "query_person", "threshold", "calibration", "hits": [{"rank", "index", "file", "score",
            "person_id", "camera_id", "same_person"}, ...]}`; `same_person` is `None` without a threshold.
        """
        if len(self.index) == 0:
            raise WebAppError(f"the gallery index in {self.index_dir} is empty: build it with `lareid index` first.")
        top_k = int(top_k)
        if top_k < 1:
            raise WebAppError(f"top-k must be at least 1, got {top_k}.")
        query_camera, query_person = _known(query_camera), _known(query_person)
        if query_camera != UNKNOWN and self.index.camera_ids is None:
            raise WebAppError("this gallery index stores no camera ids, so the query's camera cannot be left out.")
        embedding = self._embed(image, "query image")
        hits = search_other_cameras(
            self.index,
            embedding,
            top_k,
            [query_camera],
            [query_person],
            provenance=self.encoder.provenance,
        )
        rows = []
        for rank, gallery_row in enumerate(hits.indices[0]):
            rows.append(
                {
                    "rank": rank + 1,
                    "index": int(gallery_row),
                    "file": self.gallery_path(int(gallery_row)),
                    "score": float(hits.scores[0, rank]),
                    "person_id": None if hits.person_ids is None else int(hits.person_ids[0, rank]),
                    "camera_id": None if hits.camera_ids is None else int(hits.camera_ids[0, rank]),
                    "same_person": None if hits.same_person is None else bool(hits.same_person[0, rank]),
                }
            )
        return {
            "query_camera": query_camera,
            "query_person": query_person,
            "threshold": self.index.verification_threshold,
            "calibration": self.index.verification_calibration,
            "hits": rows,
        }

    def compare(self, image_a: Any, image_b: Any) -> dict:
        """
        Cosine similarity of two images and the same-person verdict at the index's calibrated threshold.

        Returns:
            `{"cosine", "threshold", "verdict", "false_match_rate", "target_false_match_rate", "calibrated_on"}`;
            the verdict is "same person", "different people", or "no calibrated threshold".
        """
        first, second = self._embed(image_a, "first image"), self._embed(image_b, "second image")
        cosine = float(np.clip(first[0] @ second[0], -1.0, 1.0))
        threshold = self.index.verification_threshold
        calibration = self.index.verification_calibration or {}
        if threshold is None:
            verdict = NO_THRESHOLD
        else:
            verdict = SAME_PERSON if cosine > threshold else DIFFERENT_PEOPLE
        return {
            "cosine": cosine,
            "threshold": threshold,
            "verdict": verdict,
            "false_match_rate": calibration.get("false_match_rate"),
            "target_false_match_rate": calibration.get("target_false_match_rate"),
            "calibrated_on": calibration.get("calibrated_on"),
        }

    def attention(self, image: Any) -> str:
        """A PNG (path) of the image above its attention rollout, with the row parts marked (as `lareid demo`)."""
        from ..analysis.model_pictures import plot_attention

        picture = _read_image(image, "query image")
        handle, path = tempfile.mkstemp(prefix="lareid-attention-", suffix=".png")
        os.close(handle)
        return str(plot_attention(self.model, [picture], self.image_processor, path))

    # ------------------------------------------------------------------------------------------------- gallery
    def gallery_path(self, row: int) -> str | None:
        """The file of gallery image `row` (resolved against the index's `data_dir`), or `None` without paths."""
        paths = self.index.paths
        return None if paths is None or not paths[row] else self.index.resolve_path(paths[row])

    def gallery_image(self, row: int) -> dict:
        """`{"index", "file", "person_id", "camera_id"}` of gallery image `row`: a query picked from the gallery."""
        row = int(row)
        if not 0 <= row < len(self.index):
            raise WebAppError(f"the gallery has images 0 to {len(self.index) - 1}, not {row}.")
        person_ids, camera_ids = self.index.person_ids, self.index.camera_ids
        return {
            "index": row,
            "file": self.gallery_path(row),
            "person_id": UNKNOWN if person_ids is None else int(person_ids[row]),
            "camera_id": UNKNOWN if camera_ids is None else int(camera_ids[row]),
        }

    def gallery_sample(self, count: int = 48) -> list[int]:
        """Up to `count` gallery rows spread evenly over the index (the query picker's thumbnails)."""
        if len(self.index) == 0 or self.index.paths is None:
            return []
        spread = np.linspace(0, len(self.index) - 1, num=min(count, len(self.index))).round().astype(int)
        return sorted(set(spread.tolist()))

    def gallery_folders(self) -> list[str]:
        """The folders holding the gallery images (the only files the page may serve besides its own)."""
        return sorted({str(Path(self.index.resolve_path(path)).parent) for path in self.index.paths or [] if path})

    def summary(self) -> dict:
        """What the page header says: index size, model, threshold and its calibration."""
        return {
            "index_dir": str(self.index_dir),
            "size": len(self.index),
            "model": self.model_reference,
            "threshold": self.index.verification_threshold,
            "calibration": self.index.verification_calibration,
        }


def _read_image(image: Any, name: str):
    """An RGB PIL image from a path or a PIL image; a `WebAppError` saying what to do when there is none."""
    if image is None or image == "":
        raise WebAppError(f"no {name}: upload, paste or drop an image first.")
    try:
        return load_rgb(image)
    except ValueError as error:
        raise WebAppError(UNREADABLE.format(name=f"the {name}")) from error


def _known(value: Any) -> int:
    """An id from a form field: `None`, empty or negative -> -1 (unknown)."""
    if value is None or value == "":
        return UNKNOWN
    number = int(value)
    return number if number >= 0 else UNKNOWN
