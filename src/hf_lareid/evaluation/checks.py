"""Input checks shared by the evaluation modules: arrays in (numpy, torch or lists), checked numpy arrays out.

Every check raises a `ValueError` that names the argument and, where there is one, the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

import numpy as np
import torch

from ..utils.errors import InvalidInputError

__all__ = [
    "DISTRACTOR_ID",
    "JUNK_ID",
    "ArrayLike",
    "check_choice",
    "check_features",
    "check_labels",
    "check_max_rank",
    "check_paths",
    "to_numpy",
]

JUNK_ID = -1
"""Person id of junk gallery images (Market-1501 convention): removed from the gallery for every query."""
DISTRACTOR_ID = 0
"""Person id of distractor gallery images (Market-1501 convention): kept in the gallery as negatives."""

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]


def to_numpy(values: ArrayLike) -> np.ndarray:
    """`values` as a numpy array (a torch tensor is detached and moved to the CPU; bfloat16 becomes float32)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        if values.dtype == torch.bfloat16:
            values = values.float()
        return values.numpy()
    return np.asarray(values)


def check_features(
    features: ArrayLike,
    name: str,
    dim: Optional[int] = None,
    norm_tolerance: Optional[float] = None,
    reject_zero: bool = False,
) -> np.ndarray:
    """Returns `features` as a C-contiguous float32 array of shape `(n, dim)`, or raises a `ValueError` naming `name`.

    Rejects empty sets, a wrong number of dimensions, a feature width different from `dim` and non-finite values;
    with `reject_zero`, all-zero rows (no direction: every cosine ties); with `norm_tolerance`, rows whose norm
    differs from 1 by more (embeddings are unit-norm; another norm means a broken extraction).
    """
    array = to_numpy(features)
    if array.ndim != 2:
        raise InvalidInputError(f"`{name}` must have shape (num_images, feature_dim), got shape {tuple(array.shape)}.")
    if array.shape[0] == 0:
        raise InvalidInputError(f"`{name}` is empty: at least one image is needed.")
    if dim is not None and array.shape[1] != dim:
        raise InvalidInputError(
            f"`{name}` has feature dimension {array.shape[1]}, expected {dim} (the other feature set's width): "
            "were both extracted with the same model?"
        )
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise InvalidInputError(f"`{name}` must hold real numbers, got dtype {array.dtype}.")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array).all(axis=1)).sum())
        raise InvalidInputError(
            f"`{name}` contains NaN or infinite values in {bad} row(s); check the feature extraction."
        )
    norms = np.linalg.norm(array, axis=1)
    if (reject_zero or norm_tolerance is not None) and (norms < 1e-12).any():
        raise InvalidInputError(
            f"`{name}` has {int((norms < 1e-12).sum())} all-zero row(s) (row {int(np.argmin(norms))}): they match "
            "nothing; check the feature extraction."
        )
    if norm_tolerance is not None and np.abs(norms - 1.0).max() > norm_tolerance:
        worst = int(np.abs(norms - 1.0).argmax())
        raise InvalidInputError(
            f"`{name}` must be unit-norm (row {worst} has norm {norms[worst]:.4f}): normalise them first, e.g. "
            "`x / np.linalg.norm(x, axis=1, keepdims=True)`."
        )
    return array


def check_labels(values: Optional[ArrayLike], name: str, length: int, required: bool = True) -> Optional[np.ndarray]:
    """Returns `values` as an int64 array of shape `(length,)` (or `None` when absent and not required)."""
    if values is None:
        if required:
            raise InvalidInputError(f"`{name}` is required.")
        return None
    array = to_numpy(values)
    if array.ndim != 1:
        raise InvalidInputError(f"`{name}` must be one-dimensional, got shape {tuple(array.shape)}.")
    if array.shape[0] != length:
        raise InvalidInputError(
            f"`{name}` has {array.shape[0]} entries but there are {length} feature rows: they must match."
        )
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not (np.issubdtype(array.dtype, np.floating) and np.array_equal(array, np.round(array))):
            raise InvalidInputError(f"`{name}` must hold integers, got dtype {array.dtype}.")
    return array.astype(np.int64, copy=False)


def check_paths(paths: Optional[Sequence[str]], name: str, length: int) -> Optional[np.ndarray]:
    """`paths` as a string array of shape `(length,)` (or `None` when absent)."""
    if paths is None:
        return None
    array = np.asarray([str(path) for path in paths])
    if array.shape[0] != length:
        raise InvalidInputError(
            f"`{name}` has {array.shape[0]} entries but there are {length} feature rows: they must match."
        )
    return array


def check_choice(value: str, name: str, choices: Sequence[str]) -> str:
    """`value`, or a `ValueError` listing the `choices`."""
    if value not in choices:
        raise InvalidInputError(f"`{name}` must be one of {list(choices)}, got {value!r}.")
    return value


def check_max_rank(max_rank: int) -> None:
    """A `ValueError` unless `max_rank` is a positive integer (the length of the CMC curve)."""
    if not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise InvalidInputError(f"`max_rank` must be a positive integer, got {max_rank!r}.")
