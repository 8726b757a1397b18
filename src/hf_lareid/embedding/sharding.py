"""Sharded embedding across processes and machines: which rows a rank embeds, and gathering them on rank 0.

A shard is contiguous and deterministic: rank `r` of `w` embeds rows `shard_bounds(n, r, w)`, so gathering the
shards in rank order gives the rows in their original order. Used by `ReIDEncoder.encode(shard=...)`,
`evaluate_model`, the Trainer's evaluation and `lareid index` / `lareid evaluate` under torchrun.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any, Literal, Optional, Union

import torch
import torch.distributed as dist

from ..utils.errors import InvalidInputError, LAReIDError
from .feature_set import FeatureSet
from .inputs import is_dataset, is_one_image

ShardOption = Union[None, Literal["auto"], tuple[int, int]]


def shard_bounds(num_items: int, rank: int, world_size: int) -> tuple[int, int]:
    """`(start, stop)` of rank `rank`'s contiguous shard of `num_items` rows; the first `num_items % world_size` get one more."""
    base, extra = divmod(num_items, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def resolve_shard(shard: ShardOption) -> tuple[int, int]:
    """
    `(rank, world_size)` from `shard`: `None` -> `(0, 1)`; `"auto"` -> the initialised `torch.distributed` group,
    else `RANK` / `WORLD_SIZE` from the environment (torchrun), else `(0, 1)`; a pair is checked and returned.
    """
    if shard is None:
        return 0, 1
    if shard == "auto":
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return _env_int(os.environ, "RANK", 0), _env_int(os.environ, "WORLD_SIZE", 1)
    try:
        rank, world_size = (int(value) for value in shard)
    except (TypeError, ValueError):
        raise InvalidInputError(f"shard must be None, 'auto' or a pair (rank, world_size), got {shard!r}.") from None
    if world_size < 1 or not 0 <= rank < world_size:
        raise InvalidInputError(f"shard=(rank, world_size) needs 0 <= rank < world_size, got {shard!r}.")
    return rank, world_size


def is_distributed() -> bool:
    """Whether a `torch.distributed` group with more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main_process() -> bool:
    """Rank 0, or the only process: the one that prints results and writes files."""
    return not is_distributed() or dist.get_rank() == 0


def gather_objects(value: Any, dst: int = 0) -> Optional[list[Any]]:
    """Every rank's `value` in rank order on rank `dst` (`None` elsewhere); `[value]` without a process group."""
    if not is_distributed():
        return [value]
    gathered = [None] * dist.get_world_size() if dist.get_rank() == dst else None
    dist.gather_object(value, gathered, dst=dst)
    return gathered


def broadcast_object(value: Any, src: int = 0) -> Any:
    """Rank `src`'s `value` on every rank (`value` itself without a process group)."""
    if not is_distributed():
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def shard_data(data: Any, shard: ShardOption) -> Any:
    """
    This rank's contiguous shard of `data` (see `shard_bounds`): a `datasets.Dataset` is `select`ed, a
    list/tuple/array sliced; `shard=None` returns `data` unchanged.
    """
    rank, world_size = resolve_shard(shard)
    if world_size == 1:
        return data
    if is_one_image(data):
        data = [data]
    if not hasattr(data, "__len__"):
        raise InvalidInputError(
            "sharding needs data with a length (a dataset, list or array), not a generator: pass list(data)."
        )
    start, stop = shard_bounds(len(data), rank, world_size)
    if is_dataset(data) and hasattr(data, "select"):
        return data.select(range(start, stop))
    return data[start:stop]


def gather_features(part: FeatureSet, dst: int = 0) -> FeatureSet | None:
    """
    The [`FeatureSet`] shards of every rank joined in rank order on rank `dst` (the original row order, since
    shards are contiguous); `None` on the other ranks; `part` itself without a process group.
    """
    parts = gather_objects(part, dst=dst)
    if parts is None:
        return None
    return parts[0] if len(parts) == 1 else FeatureSet.concatenate(parts, embedding_dim=part.embeddings.shape[1])


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. builds a dataset cache), the other ranks after it; a no-op alone."""
    if is_distributed() and dist.get_rank() != 0:
        dist.barrier()
    yield
    if is_distributed() and dist.get_rank() == 0:
        dist.barrier()


class LaunchError(LAReIDError, RuntimeError):
    """The processes a launcher started do not match what was asked for; the message names the launch to use."""


def _env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    """The whole number a launcher set in the environment variable `name`; `default` when it is not set."""
    text = environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise LaunchError(
            f"{name}={text!r} is not a whole number: unset it, or start the processes with torchrun or accelerate launch."
        ) from None


def check_launch(environ: Optional[dict[str, str]] = None) -> None:
    """
    Refuses (one line) a launch whose world size differs from the number of processes asked for, where that can be
    told: `ACCELERATE_NUM_PROCESSES` vs `WORLD_SIZE`, or `accelerate launch --cpu --num_processes N`, which sets
    `MASTER_ADDR` but silently starts ONE process without `WORLD_SIZE`.
    """
    env = os.environ if environ is None else environ
    world_size = _env_int(env, "WORLD_SIZE", 1)
    asked = env.get("ACCELERATE_NUM_PROCESSES")
    if asked is not None and _env_int(env, "ACCELERATE_NUM_PROCESSES", 0) != world_size:
        raise LaunchError(
            f"{asked} processes were asked for (ACCELERATE_NUM_PROCESSES) but {world_size} started (WORLD_SIZE): "
            "launch with `torchrun --nproc_per_node N` or `accelerate launch --multi_gpu --num_processes N`."
        )
    if "ACCELERATE_USE_CPU" in env and "MASTER_ADDR" in env and "WORLD_SIZE" not in env:
        raise LaunchError(
            "`accelerate launch --cpu --num_processes N` starts ONE process: use `accelerate launch --multi_gpu "
            "--num_processes N` (also on CPUs) or `torchrun --nproc_per_node N`."
        )


def init_from_launcher() -> bool:
    """
    Joins the process group a launcher (torchrun, `accelerate launch --multi_gpu`) describes in the environment
    (gloo on CPUs, nccl on GPUs, each rank on GPU `LOCAL_RANK`); True when there is more than one process.
    """
    check_launch()
    if _env_int(os.environ, "WORLD_SIZE", 1) <= 1:
        return False
    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and os.environ.get("ACCELERATE_USE_CPU", "false").lower() not in (
            "1",
            "true",
        )
        if use_cuda:
            local_rank = _env_int(os.environ, "LOCAL_RANK", 0)
            if local_rank >= torch.cuda.device_count():
                raise LaunchError(
                    f"local rank {local_rank} has no GPU (this machine has {torch.cuda.device_count()}): start at most "
                    "that many processes per machine, or run on CPUs with CUDA_VISIBLE_DEVICES=''."
                )
            torch.cuda.set_device(local_rank)
        # Ranks wait in a collective while rank 0 saves a large index: allow hours, not the default 30 minutes.
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=timedelta(hours=6))
        atexit.register(dist.destroy_process_group)
    return True


def launcher_device() -> Optional[str]:
    """This rank's device under a GPU launch (`cuda:LOCAL_RANK`), else None (the model's own)."""
    if is_distributed() and dist.get_backend() == "nccl":
        return f"cuda:{torch.cuda.current_device()}"
    return None


__all__ = [
    "LaunchError",
    "ShardOption",
    "broadcast_object",
    "check_launch",
    "gather_features",
    "gather_objects",
    "init_from_launcher",
    "is_distributed",
    "is_main_process",
    "launcher_device",
    "main_process_first",
    "resolve_shard",
    "shard_bounds",
    "shard_data",
]
