"""The bf16 policy: where bf16 autocast pays, how `"auto"` / `True` / `False` resolve, and the autocast context.

Every command and API resolves `bf16` here, once, for the device the model runs on (`ReIDEncoder` does it when it
is built): `"auto"` means bf16 only where it is fast, `True` forces it, `False` never uses it.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Literal, Union

import torch

logger = logging.getLogger(__name__)

BF16Option = Union[bool, Literal["auto"]]


def bf16_pays(device: torch.device | str = "cpu") -> bool:
    """
    Whether bf16 autocast speeds this device up.

    On a GPU: when it supports bf16. On a CPU: only with AVX-512 bf16 instructions (on AVX2-only CPUs bf16 autocast
    is several times slower than fp32 for inference; see docs/inference.md).
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported())
    return False


def resolve_bf16(bf16: BF16Option, device: torch.device | str = "cpu") -> bool:
    """`"auto"` -> bf16 where it pays (see `bf16_pays`); `True` forces it (with a warning where it is slow); `False` never."""
    if bf16 == "auto":
        return bf16_pays(device)
    if bf16 is True and not bf16_pays(device):
        logger.warning("bf16 autocast forced on %s, where it is usually slower than fp32.", torch.device(device))
    return bool(bf16)


def bf16_option(flag: bool) -> BF16Option:
    """A command-line `--bf16` switch as a policy: given -> `True` (forced), absent -> `"auto"` (where it pays)."""
    return True if flag else "auto"


def autocast_context(enabled: bool, device: torch.device | str = "cpu") -> contextlib.AbstractContextManager:
    """`torch.autocast` to bf16 when `enabled` (weights stay fp32), else a no-op context."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


__all__ = ["BF16Option", "autocast_context", "bf16_option", "bf16_pays", "resolve_bf16"]
