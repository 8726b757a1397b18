"""Which runtime embeds images (`runtime="auto" | "torch" | "onnxruntime" | "openvino"`), and the ONNX cache they share.

Every embedding path (`extract_features`, the `lareid-embedding` pipeline, `lareid evaluate` / `index` / `serve`)
takes `runtime`; [`make_embedder`] turns it into an [`Embedder`] whose one call is
`embed(pixel_values (batch, 3, H, W) float32, flip=False) -> (batch, embedding_dim)` unit-norm fp32 on the CPU
(on the model's device for `"torch"`).

`"auto"` follows the fixed table [`AUTO_PREFERENCE`] (from `benchmarks/bench_runtimes.py`; no timing at run time,
which would answer differently on a loaded machine): the first installed runtime for the device and precision.
bf16 autocast exists in PyTorch only, so where bf16 is in effect (`features.resolve_bf16`) "auto" picks `"torch"`.

ONNX Runtime and OpenVINO run the graph of `onnx_export.export_onnx`, exported once per model into
`onnx_cache_dir()/<model key>/model.onnx` with a `manifest.json` holding its SHA-256, checked on every reuse (a
damaged file is re-exported with a warning). The cache is never inside a model folder.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import logging
import os
import sys
import threading
import weakref
from pathlib import Path
from typing import Literal, Union

import numpy as np
import torch

from .extras import require_extra
from .features import BF16Option, embed_pixels, model_fingerprint, resolve_bf16
from .file_utils import atomic_write_text, file_sha256, folder_lock

logger = logging.getLogger(__name__)

RuntimeName = Literal["torch", "onnxruntime", "openvino"]
RuntimeOption = Union[Literal["auto", "torch", "onnxruntime", "openvino"], "Embedder"]
RUNTIMES = ("torch", "onnxruntime", "openvino")

# The one preference order of runtime="auto": (device type, precision) -> runtimes, the first installed one wins.
# CPU fp32 from benchmarks/bench_runtimes.py: OpenVINO ahead of ONNX Runtime, both ahead of eager PyTorch; bf16
# autocast exists in PyTorch only.
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
ONNX_OPSET = 18
# The TorchScript exporter: much faster to export than the torch.export-based one, and its graph runs as fast in
# onnxruntime and OpenVINO, which matters for an export made on the fly (a Trainer's evaluation, a first query).
ONNX_EXPORTER = "torchscript"
CACHE_ENV = "HF_LAREID_CACHE"
MANIFEST_NAME = "manifest.json"
ONNX_NAME = "model.onnx"


# ----------------------------------------------------------------------------------------------------- choosing
def runtime_available(name: str) -> bool:
    """Whether every module `name` needs is installed, found without importing it. A module found once is not
    searched for again in this process (a path search per call would cost a batch-1 call a millisecond); one
    blocked in `sys.modules` (set to `None`) counts as missing."""
    return all(_module_found(module) for module, _ in RUNTIME_MODULES[name])


_FOUND_MODULES: set[str] = set()


def _module_found(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None
    if module not in _FOUND_MODULES and importlib.util.find_spec(module) is not None:
        _FOUND_MODULES.add(module)
    return module in _FOUND_MODULES


def _require_runtime(name: str) -> None:
    for module, extra in RUNTIME_MODULES[name]:
        require_extra(module, extra, f"runtime={name!r}")


def choose_runtime(runtime: str, device: torch.device | str = "cpu", bf16: bool = False) -> str:
    """
    The runtime to use: an explicit name is checked (installed, or one line naming its extra); `"auto"` takes the
    first installed runtime of `AUTO_PREFERENCE[(device type, "bf16" if bf16 else "fp32")]` and logs why.
    """
    if runtime not in ("auto", *RUNTIMES):
        raise ValueError(f"runtime must be 'auto', 'torch', 'onnxruntime' or 'openvino', got {runtime!r}.")
    device_type = torch.device(device).type
    if runtime != "auto":
        _require_runtime(runtime)
        return runtime
    precision = "bf16" if bf16 else "fp32"
    order = AUTO_PREFERENCE.get((device_type, precision), ("torch",))
    missing = [name for name in order if not runtime_available(name)]
    chosen = next(name for name in (*order, "torch") if name not in missing)
    skipped = f" ({', '.join(missing)} not installed)" if missing else ""
    message = f"runtime='auto' picked {chosen} for {device_type} {precision}, preference {'/'.join(order)}{skipped}"
    # Said once per process at INFO: an evaluation every epoch or a web app's every request would repeat it.
    logger.log(logging.DEBUG if message in _REPORTED_PICKS else logging.INFO, message)
    _REPORTED_PICKS.add(message)
    return chosen


_REPORTED_PICKS: set[str] = set()  # the pick messages logged at INFO in this process


# -------------------------------------------------------------------------------------------------------- cache
def onnx_cache_dir() -> Path:
    """`$HF_LAREID_CACHE/onnx`, else `$XDG_CACHE_HOME/hf_lareid/onnx` (`~/.cache/hf_lareid/onnx`)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / "onnx"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "hf_lareid" / "onnx"


def onnx_cache_key(model: torch.nn.Module) -> str:
    """sha256 of `model_fingerprint` (backbone weights, embedding config), the other weights, opset and exporter: 32 hex."""
    import hashlib

    digest = hashlib.sha256(
        f"{model_fingerprint(model)}|opset{ONNX_OPSET}|{ONNX_EXPORTER}|{model.config.embedding}".encode()
    )
    for name, tensor in sorted(model.state_dict().items()):
        if not name.startswith("vit."):  # the row heads (bottleneck embeddings); the backbone is in the fingerprint
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


def cached_onnx(model: torch.nn.Module) -> Path:
    """
    The model's ONNX graph in the cache, exported (and checked with onnxruntime when installed) on first use.

    Reuse checks the file's SHA-256 against the manifest; a damaged or unrecorded file is re-exported with a warning.
    """
    from .onnx_export import export_onnx

    folder = onnx_cache_dir() / onnx_cache_key(model)
    path, manifest_path = folder / ONNX_NAME, folder / MANIFEST_NAME
    with folder_lock(folder, wait=True):  # two processes embedding with one model export it once
        if path.is_file():
            try:
                recorded = json.loads(manifest_path.read_text())["sha256"]
            except (OSError, ValueError, KeyError, TypeError):
                recorded = None
            if recorded == file_sha256(path):
                return path
            logger.warning("%s does not match its recorded SHA-256 (damaged or edited): exporting it again.", path)
        folder.mkdir(parents=True, exist_ok=True)
        report = export_onnx(
            model,
            path,
            opset=ONNX_OPSET,
            exporter=ONNX_EXPORTER,
            check=importlib.util.find_spec("onnxruntime") is not None,
        )
        manifest = {
            "producer": "hf-lareid",
            "sha256": file_sha256(path),
            "opset": ONNX_OPSET,
            "exporter": report["exporter"],
            "max_abs_diff": report["max_abs_diff"],
            "torch": torch.__version__,
        }
        atomic_write_text(manifest_path, json.dumps(manifest, indent=2) + "\n")
        logger.info("Exported the model to %s for the ONNX runtimes (once per model).", path)
    return path


# ----------------------------------------------------------------------------------------------------- embedders
class Embedder:
    """Embeds preprocessed batches: `embed((batch, 3, H, W) float32, flip) -> (batch, embedding_dim)` unit norm."""

    name: str = ""
    bf16: bool = False  # whether it embeds under bf16 autocast (PyTorch only)

    def embed(self, pixel_values: np.ndarray | torch.Tensor, flip: bool = False) -> torch.Tensor:
        """`flip` averages each image's embedding with its mirror image's (one run of both), then re-normalises."""
        pixels = torch.as_tensor(pixel_values).detach().to("cpu", torch.float32)
        if flip:
            pixels = torch.cat([pixels, pixels.flip(-1)])
        embeddings = self._run(np.ascontiguousarray(pixels.numpy())).astype(np.float32, copy=False)
        if flip:
            half = len(embeddings) // 2
            embeddings = embeddings[:half] + embeddings[half:]
        # Normalised in NumPy, as F.normalize does (norms clamped at 1e-12): a torch op would cost a batch of one
        # image a quarter of a millisecond.
        norms = np.maximum(np.linalg.norm(embeddings, axis=-1, keepdims=True), 1e-12)
        return torch.from_numpy(embeddings / norms)

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class TorchEmbedder(Embedder):
    """PyTorch eager `model.embed` (under bf16 autocast when `bf16`), on the model's device."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, bf16: bool = False):
        self.model, self.bf16 = model, bf16

    def embed(self, pixel_values: np.ndarray | torch.Tensor, flip: bool = False) -> torch.Tensor:
        was_training = self.model.training  # switching modes walks every module (about a millisecond): only if needed
        if was_training:
            self.model.eval()
        try:
            return embed_pixels(self.model, torch.as_tensor(pixel_values), flip=flip, bf16=self.bf16)
        finally:
            if was_training:
                self.model.train()


class OnnxRuntimeEmbedder(Embedder):
    """ONNX Runtime's CPU provider on the cached graph, with `threads` intra-op threads."""

    name = "onnxruntime"

    def __init__(self, onnx_path: str | os.PathLike, threads: int):
        onnxruntime = require_extra("onnxruntime", "onnx", "runtime='onnxruntime'")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        # ONNX Runtime's workers busy-wait after each run by default: on a machine with few cores that spinning takes
        # the cores from whatever runs next in this process: its preprocessing, training steps or web requests.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(os.fspath(onnx_path), options, providers=["CPUExecutionProvider"])

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.session.get_inputs()[0].name: pixels})[0]


class OpenVINOEmbedder(Embedder):
    """OpenVINO on the CPU in fp32 (its bf16 default on AMX/AVX-512 CPUs is turned off) with `threads` threads."""

    name = "openvino"

    def __init__(self, onnx_path: str | os.PathLike, threads: int):
        openvino = import_openvino()
        config = {"INFERENCE_NUM_THREADS": str(threads), "INFERENCE_PRECISION_HINT": "f32"}
        self.compiled = openvino.Core().compile_model(os.fspath(onnx_path), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.lock = threading.Lock()  # one infer request: one batch at a time (the web app serves threads)

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        with self.lock:
            self.request.infer({0: pixels})
            return self.request.get_output_tensor(0).data.copy()


def import_openvino():
    """
    `openvino`, imported with its telemetry off; one line naming the `openvino` extra when it is missing.

    `import openvino` sends a usage event to Google Analytics (its model-conversion tools' `openvino_telemetry`,
    opted in unless a consent file in the home folder says no, or `CI=true`). hf-lareid embeds people's photos and
    its web app promises to contact nothing, so the import runs with `openvino_telemetry` blocked: OpenVINO then
    falls back to its own no-op stub for this process. The block is lifted right after the import.
    """
    blocked = "openvino" not in sys.modules and "openvino_telemetry" not in sys.modules
    if blocked:
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # `import` now raises ImportError
    try:
        return require_extra("openvino", "openvino", "runtime='openvino'")
    finally:
        if blocked:
            del sys.modules["openvino_telemetry"]


def _exported_once(model: torch.nn.Module, embedder_class: type[Embedder], threads: int) -> Embedder:
    """An ONNX embedder of the weights `model` has now: exported to a temporary file, loaded, and the file removed."""
    import tempfile

    from .onnx_export import export_onnx

    with tempfile.TemporaryDirectory(prefix="hf_lareid_onnx_") as folder:
        path = Path(folder) / ONNX_NAME
        export_onnx(model, path, opset=ONNX_OPSET, exporter=ONNX_EXPORTER, check=False)
        return embedder_class(path, threads=threads)  # both runtimes read the whole graph when they load it


def make_embedder(
    model: torch.nn.Module, runtime: RuntimeOption = "auto", bf16: BF16Option = "auto", cache: bool = True
) -> Embedder:
    """
    The [`Embedder`] for `model`: `runtime` is `"auto"`, a runtime name, or an `Embedder` (returned as it is).

    `cache=False` exports the graph to a temporary file for this embedder only, unchecked (the Trainer's evaluation,
    whose weights change every time, would otherwise fill the cache with one graph per evaluation).

    `bf16` (`"auto"`, `True`, `False`) is resolved for the model's device; bf16 in effect means PyTorch for "auto".
    An ONNX runtime asked for by name embeds in fp32 (a warning when `bf16=True`). The ONNX runtimes use
    `torch.get_num_threads()` intra-op threads and the graph cached by [`cached_onnx`].

    Example:

    ```python
    >>> embedder = make_embedder(model, "auto")  # logs e.g. "runtime='auto' picked onnxruntime for cpu fp32 ..."
    >>> embedder.embed(pixel_values, flip=True).shape  # -> (batch, embedding_dim)
    ```
    """
    if isinstance(runtime, Embedder):
        return runtime
    device = next(model.parameters()).device
    if runtime in ("auto", "torch"):
        use_bf16 = resolve_bf16(bf16, device)
    else:
        if bf16 is True:
            logger.warning("bf16 autocast exists in PyTorch only: runtime=%r embeds in fp32.", runtime)
        use_bf16 = False
    name = choose_runtime(runtime, device, use_bf16)
    if name == "torch":
        return TorchEmbedder(model, bf16=use_bf16)
    embedder_class = OnnxRuntimeEmbedder if name == "onnxruntime" else OpenVINOEmbedder
    if not cache:
        return _exported_once(model, embedder_class, threads=torch.get_num_threads())
    return _loaded_embedder(model, name, embedder_class)


# The ONNX embedders this process has loaded, per model: ((cache dir, weights token), {runtime name: embedder}). Building one
# hashes the weights for the cache key, checks the file's SHA-256 and compiles the graph (about a second), which
# repeated `extract_features` calls or a web app's requests must not pay each time.
_LOADED: weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple, dict[str, Embedder]]] = weakref.WeakKeyDictionary()


def _weights_token(model: torch.nn.Module) -> tuple:
    """Changes whenever a weight is replaced or modified in place: the storage and version counter of every
    parameter and buffer. The list of those tensors is walked from the modules again only after a module,
    parameter or buffer was registered somewhere (torch's global registration hooks count that), so a batch-1 call
    reads about a hundred counters instead of walking every module."""
    _count_registrations_once()
    generation, tensors = _MODEL_TENSORS.get(model, (None, ()))
    if generation != _REGISTRATIONS[0]:
        tensors = tuple(
            tensor
            for module in model.modules()
            for tensor in itertools.chain(module._parameters.values(), module._buffers.values())
            if tensor is not None
        )
        _MODEL_TENSORS[model] = (_REGISTRATIONS[0], tensors)
    return tuple((tensor.data_ptr(), tensor._version) for tensor in tensors)


_REGISTRATIONS = [0]  # modules, parameters and buffers registered (assigned) anywhere since the hooks went in
_MODEL_TENSORS: weakref.WeakKeyDictionary[torch.nn.Module, tuple[int, tuple]] = weakref.WeakKeyDictionary()


def _count_registration(*_: object) -> None:
    _REGISTRATIONS[0] += 1  # returns None: the registered object is kept as it is


def _count_registrations_once() -> None:
    if _REGISTRATIONS[0] == 0:
        from torch.nn.modules import module

        for register in (
            module.register_module_module_registration_hook,
            module.register_module_parameter_registration_hook,
            module.register_module_buffer_registration_hook,
        ):
            register(_count_registration)
        _REGISTRATIONS[0] = 1


def _loaded_embedder(model: torch.nn.Module, name: str, embedder_class: type[Embedder]) -> Embedder:
    token = (str(onnx_cache_dir()), _weights_token(model))
    recorded_token, embedders = _LOADED.get(model, (None, {}))
    if recorded_token != token:
        embedders = {}
    if name not in embedders:
        embedders[name] = embedder_class(cached_onnx(model), threads=torch.get_num_threads())
    _LOADED[model] = (token, embedders)
    return embedders[name]


__all__ = [
    "AUTO_PREFERENCE",
    "Embedder",
    "OnnxRuntimeEmbedder",
    "OpenVINOEmbedder",
    "RUNTIMES",
    "RuntimeOption",
    "TorchEmbedder",
    "cached_onnx",
    "choose_runtime",
    "import_openvino",
    "make_embedder",
    "onnx_cache_dir",
    "onnx_cache_key",
    "runtime_available",
]
