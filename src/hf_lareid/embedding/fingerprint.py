"""The model and runtime parts of a [`Provenance`], read from a live model: its fingerprint, forward config and runtime."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch

EMBEDDING_CONFIG_FIELDS = ("embedding", "lambda_global", "image_size", "patch_size", "hidden_size", "num_parts")
# Fields that came with the backbones beyond ViT, with their ViT values: a field enters the fingerprint only when it
# differs, so the fingerprints of ViT models (and the gallery indexes that store them) stay what they were.
BACKBONE_CONFIG_FIELDS = {"backbone_type": "vit", "num_special_tokens": 1, "global_token": "cls"}
# Every field of the LA-Transformer config and of its backbone config that `embed` reads (those absent from a
# backbone are left out).
FORWARD_CONFIG_FIELDS = (
    *EMBEDDING_CONFIG_FIELDS,
    *BACKBONE_CONFIG_FIELDS,
    "bottleneck_dim",
)
BACKBONE_FORWARD_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "layer_norm_eps",
    "qkv_bias",
    "patch_size",
    "image_size",
    "num_channels",
    "layerscale_value",
    "use_swiglu_ffn",
    "mlp_ratio",
    "num_register_tokens",
)
# The row heads' layers that `embed` runs when `config.embedding == "bottleneck"` (their classifiers never).
BOTTLENECK_PARAMETERS = (".dense.", ".norm.")


def _hash_tensors(digest: Any, named_tensors: list[tuple[str, torch.Tensor]]) -> None:
    for name, tensor in sorted(named_tensors, key=lambda item: item[0]):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())


def model_fingerprint(model: torch.nn.Module) -> str:
    """
    sha256 of the weights that make the embedding and of the config fields that shape it (the backbone type, its
    special tokens and which is the global token included): two models with the same fingerprint embed images
    identically. The weights are the backbone's, and the row heads' bottlenecks when `config.embedding` is
    `"bottleneck"`; swapping the row classifiers keeps the fingerprint. A gallery index stores it to refuse queries
    from another model.
    """
    digest = hashlib.sha256()
    config = model.config
    fields = {name: getattr(config, name) for name in EMBEDDING_CONFIG_FIELDS}
    for name, vit_value in BACKBONE_CONFIG_FIELDS.items():
        if getattr(config, name, vit_value) != vit_value:
            fields[name] = getattr(config, name)
    digest.update(json.dumps(fields, sort_keys=True, default=list).encode())
    state = model.state_dict()
    _hash_tensors(digest, [(name, tensor) for name, tensor in state.items() if name.startswith("vit.")])
    if config.embedding == "bottleneck":
        _hash_tensors(
            digest,
            [
                (name, tensor)
                for name, tensor in state.items()
                if not name.startswith("vit.") and any(part in name for part in BOTTLENECK_PARAMETERS)
            ],
        )
    return digest.hexdigest()


def model_forward_config(model: torch.nn.Module) -> dict[str, Any]:
    """Every config field the model's forward reads, as JSON values (`backbone_<name>` for the backbone's)."""
    config = model.config
    values = {name: getattr(config, name, None) for name in FORWARD_CONFIG_FIELDS}
    backbone = getattr(config, "backbone_config", None)
    if backbone is not None:
        for name in BACKBONE_FORWARD_FIELDS:
            if hasattr(backbone, name):
                values[f"backbone_{name}"] = getattr(backbone, name)
    return json.loads(json.dumps(values, sort_keys=True, default=list))


def runtime_settings(bf16: bool, device: torch.device | str = "cpu", runtime: str | None = None) -> dict[str, Any]:
    """
    What changes embeddings only slightly (bf16 vs fp32: cosine ~0.99998; another runtime: ~1e-7): bf16, the torch
    version, the device type, and the runtime (`"torch"`, `"onnxruntime"`, `"openvino"`) when given.
    """
    settings = {"bf16": bool(bf16), "torch": torch.__version__, "device": torch.device(device).type}
    return settings if runtime is None else {**settings, "runtime": runtime}


__all__ = ["model_fingerprint", "model_forward_config", "runtime_settings"]
