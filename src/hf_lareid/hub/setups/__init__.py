"""The published LA-Transformer setups (the paper's Table 2) plus the CPU setups `small` and `tiny`, as package data.

Each setup is a folder with `config.json` (model fields only), `preprocessor_config.json`, `training_args.json`
and a README. The folders live inside the installed package; the repository's top-level `hub_configs/` is a
symlink to them (one source of truth).

Example:

```python
>>> from hf_lareid.hub.setups import list_setups, load_setup
>>> list_setups()
['baseline', 'improvement1', 'improvement2', 'small', 'tiny']
>>> config, image_processor, training_args = load_setup("tiny")
>>> config.num_parts, config.image_size, training_args["per_device_train_batch_size"]
(16, (128, 64), 64)
```
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from transformers import ViTImageProcessorPil

from ...configuration_lareid import LATransformerConfig
from ...utils.errors import InvalidInputError

SETUPS_DIR = Path(__file__).resolve().parent
SETUP_FILES = ("config.json", "preprocessor_config.json", "training_args.json")


def list_setups() -> list[str]:
    """Names of the shipped setups, sorted: `['baseline', 'improvement1', 'improvement2', 'small', 'tiny']`."""
    return sorted(p.name for p in SETUPS_DIR.iterdir() if (p / "config.json").is_file())


def setup_path(name: str) -> Path:
    """
    Folder of the shipped setup `name`, e.g. `setup_path("baseline")`.

    Raises `ValueError` naming the valid setups when `name` is unknown.
    """
    path = SETUPS_DIR / name
    if os.sep in name or "/" in name or not (path / "config.json").is_file():
        raise InvalidInputError(
            f"unknown setup {name!r}: choose one of {list_setups()} or pass a folder holding {SETUP_FILES}."
        )
    return path


def load_setup(name_or_path: str | os.PathLike) -> tuple[LATransformerConfig, ViTImageProcessorPil, dict[str, Any]]:
    """
    Loads a setup: a shipped name (`"baseline"`, `"tiny"`, ...) or a folder with the same three files.

    Returns `(config, image_processor, training_args)`: the model config, the image processor (PIL backend) and
    the training hyper-parameters as a dict.
    """
    path = Path(name_or_path)
    if not path.is_dir():
        path = setup_path(str(name_or_path))
    missing = [f for f in SETUP_FILES if not (path / f).is_file()]
    if missing:
        raise FileNotFoundError(f"setup folder {str(path)!r} lacks {missing}: a setup needs {list(SETUP_FILES)}.")
    config = LATransformerConfig.from_pretrained(path)
    image_processor = ViTImageProcessorPil.from_pretrained(path)
    args_path = path / "training_args.json"
    try:
        training_args = json.loads(args_path.read_text(encoding="utf-8"))
    except ValueError as error:  # not JSON, or not UTF-8 text
        raise InvalidInputError(
            f"{args_path} is not valid JSON ({error}): fix it, or copy a shipped setup's."
        ) from None
    if not isinstance(training_args, dict):
        raise InvalidInputError(f"{args_path} must hold a JSON object of training arguments, got {training_args!r}.")
    return config, image_processor, training_args


__all__ = ["SETUPS_DIR", "list_setups", "load_setup", "setup_path"]
