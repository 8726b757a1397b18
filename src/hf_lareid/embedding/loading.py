"""Loading a model folder (or Hub id) with its image processor, for embedding."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional


def looks_local(ref: str) -> bool:
    """Whether `ref` names a local folder rather than a Hub id (`"./model"`, `"/data/m"`, `"runs/a/b"`)."""
    is_repo_id = ref.count("/") == 1 and not Path(ref).exists() and not ref.startswith((".", "/"))
    return ref.startswith((".", "/", "~")) or os.sep in ref and not is_repo_id


def load_model_and_processor(model_ref: str | os.PathLike, device: Optional[str] = None) -> tuple[Any, Any]:
    """
    An `LATransformerForReID` in eval mode and its image processor (PIL backend) from a folder or Hub id.

    A missing local folder is reported as such rather than as a failed Hub lookup. A local folder's weights are
    checked against the SHA-256 its config.json records (`verify_model_weights`).
    """
    from transformers import AutoImageProcessor

    from ..modeling_lareid import LATransformerForReID
    from ..utils.integrity import verify_model_weights

    ref = str(model_ref)
    if looks_local(ref) and not Path(ref).expanduser().is_dir():
        raise FileNotFoundError(
            f"model folder {ref!r} does not exist: pass a folder written by save_pretrained or a Hub id."
        )
    if Path(ref).is_dir() and not (Path(ref) / "config.json").is_file():
        raise FileNotFoundError(f"{ref!r} has no config.json: it is not a saved model folder (see `lareid train`).")
    if Path(ref).is_dir():
        verify_model_weights(ref)
    model = LATransformerForReID.from_pretrained(ref).eval()
    if device:
        model.to(device)
    image_processor = AutoImageProcessor.from_pretrained(ref, backend="pil")
    return model, image_processor


__all__ = ["load_model_and_processor", "looks_local"]
