"""Opening a gallery index for searching, with the model that queries it: what `lareid search` and the web app read.

The index records the model that built it and the folder its images came from; either may have moved since. This
module resolves both, naming the flag that fixes each.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..utils.errors import InvalidInputError


def open_gallery_index(
    index_dir: str | os.PathLike,
    model: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    need_images: bool = False,
) -> tuple[Any, str]:
    """
    `(index, query model reference)` for a command that reads the gallery index in `index_dir` (search, serve).

    `model` overrides the model the index records; `data_dir` says where the indexed images are now (a moved data
    folder). A recorded model folder or data folder that no longer exists is reported with the flag that fixes it
    (the data folder only where the command shows the images, `need_images`).
    """
    from ..data.folders import require_folder
    from ..embedding.loading import looks_local
    from ..retrieval import GalleryIndex

    index = GalleryIndex.load(index_dir)
    if data_dir is not None:
        index.data_dir = str(require_folder(data_dir, "--data_dir", "Give the folder the indexed images are in now."))
    elif need_images and index.data_dir is not None and not Path(index.data_dir).is_dir():
        raise FileNotFoundError(
            f"the data folder {index.data_dir} that the index in {index_dir} records does not exist (moved?): say "
            "where its images are now with --data_dir."
        )
    if model is not None:
        return index, str(model)
    if index.model_reference is None:
        raise InvalidInputError(f"the index in {index_dir} records no model: name the query model with --model.")
    reference = index.model_reference
    if looks_local(reference) and not Path(reference).expanduser().is_dir():
        raise FileNotFoundError(
            f"the model folder {reference} that the index in {index_dir} records does not exist (moved or deleted?): "
            "name the query model with --model."
        )
    return index, reference


__all__ = ["open_gallery_index"]
