"""Exports the LA-Transformer embedding model to ONNX and checks it against PyTorch with onnxruntime.

The exported graph takes `pixel_values` `(batch, 3, height, width)` (already preprocessed, as the model's image
processor makes them) and returns `embeddings` `(batch, num_parts * hidden_size)`, unit norm; the batch axis is
dynamic. Needs the optional `onnx` extra (`pip install ".[onnx]"` in the source folder).

Example:

```python
>>> from hf_lareid import LATransformerConfig, LATransformerForReID
>>> backbone = {"model_type": "vit", "image_size": [64, 32], "patch_size": 16, "hidden_size": 32,
...             "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
>>> model = LATransformerForReID(LATransformerConfig(backbone_config=backbone)).eval()  # or from_pretrained(folder)
>>> report = export_onnx(model, "lareid.onnx", exporter="torchscript")  # checked with onnxruntime
>>> report["embedding_dim"], report["max_abs_diff"] < 1e-4, report["exporter"]
(128, True, 'torchscript')
>>> differences = check_onnx(model, "lareid.onnx", batch_sizes=(1, 4))  # {batch size: max abs difference}
>>> sorted(differences), all(difference < 1e-4 for difference in differences.values())
([1, 4], True)
```
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..utils.errors import InvalidInputError
from ..utils.extras import require_extra
from ..utils.io import atomic_path

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 18
# The torch.export-based exporter implements opset 18 and above; lower opsets need the TorchScript exporter.
MIN_DYNAMO_OPSET = 18
ExporterName = Literal["auto", "dynamo", "torchscript"]
INPUT_NAME = "pixel_values"
OUTPUT_NAME = "embeddings"


class LATransformerEmbedder(nn.Module):
    """The export wrapper: `forward` is `model.embed`, `(batch, 3, height, width) -> (batch, embedding_dim)`."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model.embed(pixel_values)


def _import_onnx(check: bool) -> tuple[Any, Any]:
    """`(onnx, onnxruntime or None)`, or an ImportError naming the `onnx` extra."""
    onnx = require_extra("onnx", "onnx", "ONNX export")
    return onnx, require_extra("onnxruntime", "onnx", "Checking the ONNX export") if check else None


# Loggers of the exporters that report every graph rewrite, and that torchvision is missing, at INFO/WARNING.
_NOISY_LOGGERS = ("torch.onnx", "onnxscript", "onnx_ir")


@contextlib.contextmanager
def _eval_and_quiet(model: nn.Module) -> Iterator[None]:
    """Eval mode and quiet exporter loggers for the export and its check; restored after."""
    was_training = model.training
    noisy = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [noisy_logger.level for noisy_logger in noisy]
    model.eval()
    for noisy_logger in noisy:
        noisy_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for noisy_logger, level in zip(noisy, levels):
            noisy_logger.setLevel(level)
        model.train(was_training)


def _run_exporter(name: str, wrapper: nn.Module, example: torch.Tensor, path: str, opset: int) -> None:
    """
    Writes the graph of `wrapper` traced on `example` to `path` with torch's exporter `name`: `"dynamo"`
    (torch.export) or `"torchscript"` (the tracer). Each spells the dynamic batch axis its own way.
    """
    if name == "dynamo":
        # torch.export warns about its own internal deprecations, not the user's concern.
        quiet: tuple[type[Warning], ...] = (FutureWarning,)
        options = {
            "dynamo": True,
            "dynamic_shapes": {INPUT_NAME: {0: torch.export.Dim("batch", min=1)}},
            "external_data": False,
            "verbose": False,
        }
    else:
        # Shape checks in the model become constants in the trace, which is right for fixed-size images.
        quiet = (torch.jit.TracerWarning, DeprecationWarning)
        options = {"dynamo": False, "dynamic_axes": {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}}
    with warnings.catch_warnings():
        for category in quiet:
            warnings.simplefilter("ignore", category=category)
        torch.onnx.export(
            wrapper,
            (example,),
            path,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            **options,
        )


def _export(wrapper: nn.Module, example: torch.Tensor, path: str, opset: int, exporter: ExporterName) -> str:
    """Writes the graph to `path`; returns the exporter used, `"dynamo"` or `"torchscript"`."""
    if exporter == "dynamo" or (exporter == "auto" and opset >= MIN_DYNAMO_OPSET):
        try:
            _run_exporter("dynamo", wrapper, example, path, opset)
            return "dynamo"
        except Exception as error:  # the exporter raises many types; the TorchScript exporter is the fallback
            logger.warning("The torch.export-based ONNX exporter failed (%s); trying the TorchScript exporter.", error)
    try:
        _run_exporter("torchscript", wrapper, example, path, opset)
    except Exception as error:
        raise RuntimeError(f"ONNX export at opset {opset} failed: {type(error).__name__}: {error}") from error
    return "torchscript"


def _processor_metadata(image_processor: Any) -> dict[str, str]:
    """What an ONNX user needs to prepare images as the model's image processor does, as JSON strings."""
    if image_processor is None:
        return {}
    settings = image_processor.to_dict()
    keys = ("size", "resample", "do_resize", "do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std")
    return {f"preprocessor_{key}": json.dumps(settings[key]) for key in keys if settings.get(key) is not None}


def _check_opset_and_add_metadata(
    onnx: Any, path: str, opset: int, exporter: str, model: nn.Module, image_processor: Any
) -> None:
    """Refuses a file whose opset is not the requested one; stores the input size and preprocessing in its metadata."""
    proto = onnx.load(path)
    written_opset = next(entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx"))
    if written_opset != opset:
        raise RuntimeError(f"the {exporter} exporter wrote opset {written_opset} instead of the requested {opset}.")
    metadata = {
        "producer": "hf-lareid",
        "embedding_dim": str(model.config.embedding_dim),
        "image_size": json.dumps(list(model.config.image_size)),
        **_processor_metadata(image_processor),
    }
    onnx.helper.set_model_props(proto, metadata)
    onnx.save(proto, path)


def _example_pixels(model: nn.Module, batch_size: int, image_processor: Any, seed: int) -> torch.Tensor:
    """`(batch_size, 3, H, W)` float32: random images through `image_processor`, or standard normal pixels."""
    height, width = model.config.image_size
    generator = np.random.default_rng(seed)
    if image_processor is None:
        return torch.from_numpy(generator.standard_normal((batch_size, 3, height, width), dtype=np.float32))
    from PIL import Image

    arrays = generator.integers(0, 256, (batch_size, height, width, 3), dtype=np.uint8)
    images = [Image.fromarray(array) for array in arrays]
    return image_processor(images, return_tensors="pt")["pixel_values"].float()


def check_onnx(
    model: nn.Module,
    onnx_path: str | os.PathLike,
    batch_sizes: Sequence[int] = (1, 3),
    atol: float = 1e-4,
    image_processor: Any = None,
) -> dict[int, float]:
    """
    Runs the ONNX file with onnxruntime and `model.embed` on the same random images, per batch size.

    Returns `{batch_size: max_abs_diff}`; raises ValueError when a difference exceeds `atol`.

    See the module docstring for an example.
    """
    try:
        return _compare_with_pytorch(model, onnx_path, batch_sizes, atol, image_processor)
    except InvalidInputError as error:
        raise InvalidInputError(f"{onnx_path}: {error}") from None


def _compare_with_pytorch(
    model: nn.Module, onnx_path: str | os.PathLike, batch_sizes: Sequence[int], atol: float, image_processor: Any
) -> dict[int, float]:
    _, onnxruntime = _import_onnx(check=True)
    session = onnxruntime.InferenceSession(os.fspath(onnx_path), providers=["CPUExecutionProvider"])
    device = next(model.parameters()).device
    differences = {}
    for seed, batch_size in enumerate(batch_sizes):
        pixel_values = _example_pixels(model, batch_size, image_processor, seed)
        with torch.no_grad():
            expected = model.embed(pixel_values.to(device)).float().cpu().numpy()
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: pixel_values.numpy()})
        if got.shape != expected.shape:
            raise ValueError(
                f"onnxruntime returned shape {got.shape} for batch size {batch_size}, PyTorch {expected.shape}."
            )
        differences[batch_size] = float(np.abs(got - expected).max())
        if not differences[batch_size] < atol:
            raise InvalidInputError(
                f"onnxruntime and PyTorch embeddings differ by {differences[batch_size]:.3g} at batch size "
                f"{batch_size} (atol {atol:g}); try another opset, or report the model config."
            )
    return differences


def export_onnx(
    model: nn.Module,
    output_path: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    atol: float = 1e-4,
    image_processor: Any = None,
    check_batch_sizes: Sequence[int] = (1, 3),
    exporter: ExporterName = "auto",
) -> dict[str, Any]:
    """
    Exports the embedding model of an [`LATransformerForReID`] to one ONNX file, checked with onnxruntime.

    The graph maps `pixel_values` `(batch, 3, height, width)` at `model.config.image_size` to unit-norm
    `embeddings` `(batch, embedding_dim)`, with a dynamic batch axis. Opset 18 and above use the
    torch.export-based exporter (falling back to the TorchScript one if it fails); lower opsets use the
    TorchScript exporter. Attention is traced eagerly (the same maths as SDPA, which exporters handle less
    well). The file is written atomically: a failed export or check leaves no file behind. Weights are stored
    inside the file (models over 2 GB are not supported).

    Args:
        model: an `LATransformerForReID` (any module with `embed` and an LA-Transformer `config` works).
        output_path: the `.onnx` file to write; its folder must exist.
        opset: ONNX opset version written into the file.
        check: compare onnxruntime with PyTorch on the same random images at `check_batch_sizes`.
        atol: largest allowed absolute difference between the two embeddings.
        image_processor: when given, the check feeds random images through it, and its size, mean and std are
            stored in the file's metadata (`metadata_props`) for ONNX users.
        check_batch_sizes: batch sizes of the check.
        exporter: `"auto"` (torch.export-based from opset 18, falling back to TorchScript), `"dynamo"` (the same)
            or `"torchscript"` (the TorchScript exporter only: much faster to export, and the graph runs as fast
            in onnxruntime and OpenVINO; what the runtime cache uses).

    Returns:
        A report: `path`, `opset`, `exporter`, `input_name`, `output_name`, `image_size`, `embedding_dim`,
        `file_size_bytes`, `max_abs_diff` (the largest difference of the check, `None` when `check=False`) and
        `max_abs_diff_per_batch_size` (`{batch_size: difference}`, empty when `check=False`).

    See the module docstring for an example.
    """
    onnx, _ = _import_onnx(check)
    output_path = Path(output_path)
    if not output_path.parent.is_dir():
        raise FileNotFoundError(
            f"cannot write {output_path}: the folder {output_path.parent} does not exist; create it first."
        )
    if output_path.is_dir():
        raise IsADirectoryError(f"cannot write {output_path}: it is a folder; give a file name such as model.onnx.")
    if opset < 7:
        raise InvalidInputError(f"opset must be at least 7, got {opset}.")
    if exporter not in ("auto", "dynamo", "torchscript"):
        raise InvalidInputError(f"exporter must be 'auto', 'dynamo' or 'torchscript', got {exporter!r}.")

    height, width = model.config.image_size
    # Batch 2, not 1: torch.export would specialise a size-1 batch axis to a constant.
    example = torch.zeros(2, 3, height, width, device=next(model.parameters()).device)
    try:
        with atomic_path(output_path) as temporary, _eval_and_quiet(model):
            temp_name = str(temporary)
            with model._eager_attention(True):
                used = _export(LATransformerEmbedder(model).eval(), example, temp_name, opset, exporter)
            _check_opset_and_add_metadata(onnx, temp_name, opset, used, model, image_processor)
            differences = {}
            if check:
                differences = _compare_with_pytorch(model, temp_name, check_batch_sizes, atol, image_processor)
    except InvalidInputError as error:
        raise InvalidInputError(f"{output_path} not written: {error}") from None
    report = {
        "path": str(output_path),
        "opset": opset,
        "exporter": used,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "image_size": [height, width],
        "embedding_dim": int(model.config.embedding_dim),
        "file_size_bytes": output_path.stat().st_size,
        "max_abs_diff": max(differences.values(), default=None),
        "max_abs_diff_per_batch_size": differences,
    }
    # The caller says what it wrote (`lareid export-onnx` prints the report; the runtimes' temporary exports are
    # not news), so a library call stays quiet at INFO.
    logger.debug("Wrote %s (opset %d, %s exporter); diffs vs PyTorch %s", output_path, opset, used, differences)
    return report


__all__ = ["DEFAULT_OPSET", "LATransformerEmbedder", "check_onnx", "export_onnx"]
