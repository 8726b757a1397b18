"""What several subcommands share: dataset arguments, loading a model with its image processor, writing JSON."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ._choices import AUTO_CPU_ORDER, DATASETS, RUNTIMES


def add_dataset_arguments(parser: argparse.ArgumentParser, multiple: bool) -> None:
    """`--dataset NAME` and `--data_dir DIR` (several of each, paired in order, where `multiple`)."""
    nargs = "+" if multiple else None
    parser.add_argument("--dataset", nargs=nargs, required=True, choices=DATASETS, help="dataset loader name")
    parser.add_argument(
        "--data_dir", "--data-dir", nargs=nargs, required=True, help="dataset folder (one per --dataset)"
    )
    parser.add_argument("--batch_size", "--batch-size", type=int, default=64, help="images per forward pass")
    parser.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    parser.add_argument(
        "--bf16", action="store_true", help="bf16 autocast (default: only where the CPU/GPU runs it fast)"
    )
    add_runtime_argument(parser)


def add_runtime_argument(parser: argparse.ArgumentParser) -> None:
    """`--runtime auto|torch|onnxruntime|openvino`: what embeds the images (see `hf_lareid.runtimes`)."""
    cpu_order = " > ".join(AUTO_CPU_ORDER)
    parser.add_argument(
        "--runtime",
        default="auto",
        choices=["auto", *RUNTIMES],
        help=f"what embeds the images (default auto: the first installed of {cpu_order} on a CPU in fp32; "
        "PyTorch on a GPU or with bf16)",
    )


def load_model_and_processor(model_ref: str | os.PathLike, device: str | None = None):
    """
    An `LATransformerForReID` in eval mode and its image processor (PIL backend) from a folder or Hub id.

    A missing local folder is reported as such rather than as a failed Hub lookup. A local folder's weights are
    checked against the SHA-256 its config.json records (`verify_model_weights`).
    """
    from transformers import AutoImageProcessor

    from ..modeling_lareid import LATransformerForReID, verify_model_weights

    ref = str(model_ref)
    looks_local = ref.startswith((".", "/", "~")) or os.sep in ref and not _is_repo_id(ref)
    if looks_local and not Path(ref).expanduser().is_dir():
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


def _is_repo_id(ref: str) -> bool:
    return ref.count("/") == 1 and not Path(ref).exists() and not ref.startswith((".", "/"))


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Writes JSON atomically (`file_utils.atomic_write_text`) and returns the path."""
    from ..file_utils import atomic_write_text

    atomic_write_text(path, json.dumps(payload, indent=2, default=_to_builtin) + "\n")
    return Path(path)


def _to_builtin(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
