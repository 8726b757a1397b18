"""Which runtime embeds images (`runtime="auto" | "torch" | "onnxruntime" | "openvino"`), and building it.

`"auto"` follows the fixed table [`AUTO_PREFERENCE`] (from `benchmarks/bench_runtimes.py`; no timing at run time,
which would answer differently on a loaded machine): the first installed runtime for the device and precision.
bf16 autocast exists in PyTorch only, so where bf16 is in effect "auto" picks `"torch"`.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from typing import Literal, Optional, Union

import torch

from ...utils.errors import InvalidInputError
from ...utils.extras import require_extra
from ..precision import BF16Option, resolve_bf16
from .base import Embedder
from .graph_cache import cached_onnx, exported_once
from .onnxruntime_backend import OnnxRuntimeEmbedder
from .openvino_backend import OpenVINOEmbedder
from .torch_backend import TorchEmbedder

logger = logging.getLogger(__name__)

RuntimeName = Literal["torch", "onnxruntime", "openvino"]
RuntimeOption = Union[Literal["auto", "torch", "onnxruntime", "openvino"], Embedder]
RUNTIMES = ("torch", "onnxruntime", "openvino")

# The one preference order of runtime="auto": (device type, precision) -> runtimes, the first installed one wins.
# CPU fp32 from benchmarks/bench_runtimes.py: OpenVINO ahead of ONNX Runtime, both ahead of eager.
AUTO_PREFERENCE: dict[tuple[str, str], tuple[RuntimeName, ...]] = {
    ("cpu", "fp32"): ("openvino", "onnxruntime", "torch"),
    ("cpu", "bf16"): ("torch",),
    ("cuda", "fp32"): ("torch",),
    ("cuda", "bf16"): ("torch",),
}
# What each runtime imports (the exporter's modules included) and the setup.cfg extra that installs it.
RUNTIME_MODULES: dict[str, tuple[tuple[str, str], ...]] = {
    "torch": (),
    "onnxruntime": (("onnx", "onnx"), ("onnxscript", "onnx"), ("onnxruntime", "onnx")),
    "openvino": (("onnx", "onnx"), ("onnxscript", "onnx"), ("openvino", "openvino")),
}
EMBEDDER_CLASSES: dict[str, type[Embedder]] = {"onnxruntime": OnnxRuntimeEmbedder, "openvino": OpenVINOEmbedder}


def runtime_available(name: str) -> bool:
    """Whether every module `name` needs is installed, found without importing it (one blocked in `sys.modules`,
    set to `None`, counts as missing)."""
    return all(
        sys.modules[module] is not None if module in sys.modules else importlib.util.find_spec(module) is not None
        for module, _ in RUNTIME_MODULES[name]
    )


def choose_runtime(runtime: str, device: torch.device | str = "cpu", bf16: bool = False) -> str:
    """
    The runtime to use: an explicit name is checked (installed, or one line naming its extra); `"auto"` takes the
    first installed runtime of `AUTO_PREFERENCE[(device type, "bf16" if bf16 else "fp32")]` and logs why.
    """
    if runtime not in ("auto", *RUNTIMES):
        raise InvalidInputError(f"runtime must be 'auto', 'torch', 'onnxruntime' or 'openvino', got {runtime!r}.")
    device_type = torch.device(device).type
    if runtime != "auto":
        for module, extra in RUNTIME_MODULES[runtime]:
            require_extra(module, extra, f"runtime={runtime!r}")
        return runtime
    precision = "bf16" if bf16 else "fp32"
    order = AUTO_PREFERENCE.get((device_type, precision), ("torch",))
    missing = [name for name in order if not runtime_available(name)]
    chosen = next(name for name in (*order, "torch") if name not in missing)
    skipped = f" ({', '.join(missing)} not installed)" if missing else ""
    # DEBUG: every search and every evaluation would repeat it (`lareid --debug` shows it).
    logger.debug(
        "runtime='auto' picked %s for %s %s, preference %s%s", chosen, device_type, precision, "/".join(order), skipped
    )
    return chosen


def resolve_precision(runtime: RuntimeOption, bf16: BF16Option, device: torch.device | str) -> bool:
    """Whether bf16 is in effect: resolved for `device` with PyTorch (`"auto"`/`"torch"`); an ONNX runtime asked for by
    name embeds in fp32 (a warning when `bf16=True`)."""
    if isinstance(runtime, Embedder):
        return runtime.bf16
    if runtime in ("auto", "torch"):
        return resolve_bf16(bf16, device)
    if bf16 is True:
        logger.warning("bf16 autocast exists in PyTorch only: runtime=%r embeds in fp32.", runtime)
    return False


def make_embedder(
    model: torch.nn.Module,
    runtime: RuntimeOption = "auto",
    bf16: BF16Option = "auto",
    cache: bool = True,
    graph_key: Optional[str] = None,
) -> Embedder:
    """
    A new [`Embedder`] for `model`: `runtime` is `"auto"`, a runtime name, or an `Embedder` (returned as it is).

    `bf16` (`"auto"`, `True`, `False`) is resolved for the model's device (see `resolve_precision`). The ONNX
    runtimes use `torch.get_num_threads()` intra-op threads and the graph of `cached_onnx` (`graph_key`: the
    model's `Provenance.model_key`, when known); `cache=False` exports the graph to a temporary file for this
    embedder only, unchecked (for weights that keep changing, as in training). Nothing is kept in memory here: a
    [`ReIDEncoder`] keeps its embedder and rebuilds it when the model changes.

    Example:

    ```python
    >>> embedder = make_embedder(model, "onnxruntime")  # doctest: +SKIP
    >>> embedder.embed(pixel_values, flip=True).shape  # doctest: +SKIP
    torch.Size([2, 10752])
    ```
    """
    if isinstance(runtime, Embedder):
        return runtime
    device = next(model.parameters()).device
    use_bf16 = resolve_precision(runtime, bf16, device)
    name = choose_runtime(runtime, device, use_bf16)
    if name == "torch":
        return TorchEmbedder(model, bf16=use_bf16)
    embedder_class = EMBEDDER_CLASSES[name]
    if not cache:
        return exported_once(model, embedder_class, threads=torch.get_num_threads())
    return embedder_class(cached_onnx(model, graph_key), threads=torch.get_num_threads())


__all__ = [
    "AUTO_PREFERENCE",
    "RUNTIMES",
    "RuntimeOption",
    "choose_runtime",
    "make_embedder",
    "resolve_precision",
    "runtime_available",
]
