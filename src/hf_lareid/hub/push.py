"""Publishing a trained model folder on the Hub: which files go, the checks made before, and the upload.

Example:

```python
>>> from hf_lareid.hub.push import plan_push, push_model_folder
>>> plan = plan_push("./tiny-reid", "my-user/la-transformer-tiny")  # doctest: +SKIP
>>> [path.name for path in plan.files]  # doctest: +SKIP
['model.safetensors', 'config.json', 'preprocessor_config.json', 'README.md', 'training_args.json', 'metrics.json']
>>> push_model_folder(plan)  # doctest: +SKIP
'https://huggingface.co/my-user/la-transformer-tiny'
```
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from ..utils.integrity import verify_model_weights
from .modelcard import check_model_card

REQUIRED_FILES = ("model.safetensors", "config.json", "preprocessor_config.json", "README.md")
OPTIONAL_FILES = ("training_args.json", "metrics.json")
COMMIT_MESSAGE = "Upload LA-Transformer model (hf-lareid)"


@dataclass(frozen=True)
class PushPlan:
    """What [`push_model_folder`] uploads: the folder, its files in upload order, and the model card's metadata."""

    model_dir: Path
    repo_id: str
    files: tuple[Path, ...]
    card: dict[str, Any]


def files_to_upload(model_dir: Union[str, os.PathLike]) -> list[Path]:
    """The files of `model_dir` that go to the Hub, in a fixed order; a clear error names any missing required file."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model folder {str(model_dir)!r} does not exist.")
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{str(model_dir)!r} lacks {missing}: train with `lareid train --output_dir {model_dir}` (it writes all of them)."
        )
    return [model_dir / name for name in REQUIRED_FILES + OPTIONAL_FILES if (model_dir / name).is_file()]


def plan_push(model_dir: Union[str, os.PathLike], repo_id: str) -> PushPlan:
    """
    Checks `model_dir` before anything is published: every required file present, the weights equal to what was
    saved (`verify_model_weights`), a model card with the metadata the Hub needs (`check_model_card`).
    """
    files = files_to_upload(model_dir)
    verify_model_weights(model_dir)
    card = check_model_card(Path(model_dir) / "README.md")
    return PushPlan(Path(model_dir), repo_id, tuple(files), card)


def push_model_folder(plan: PushPlan, private: bool = False) -> str:
    """Creates the Hub repository `plan.repo_id` if needed, uploads `plan.files` in one commit; returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(plan.repo_id, private=private, exist_ok=True)
    api.upload_folder(
        repo_id=plan.repo_id,
        folder_path=str(plan.model_dir),
        allow_patterns=[path.name for path in plan.files],
        commit_message=COMMIT_MESSAGE,
    )
    return f"https://huggingface.co/{plan.repo_id}"


__all__ = ["PushPlan", "files_to_upload", "plan_push", "push_model_folder"]
