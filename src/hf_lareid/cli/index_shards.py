"""`lareid index` on several processes (torchrun): each rank embeds its shard, rank 0 stores and merges them.

Rank r embeds its contiguous shard of the split (`hf_lareid.embedding.sharding.shard_bounds`), `checkpoint_every` images
per round. After each round rank 0 gathers every rank's embeddings and writes them, atomically, as one chunk file
per rank into `.<index>.shards/` beside the index; only rank 0 writes files. When every shard is embedded, rank 0
adds the stored rows to the index in the split's order (so the index equals the single-process one), saves it and
removes the chunk folder.

Resuming is by path, one mechanism: an image whose path is in the index or in a chunk is done; rank 0 broadcasts
which images are done and each rank embeds only the rest of its shard (whatever the world size was before).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..embedding import FeatureSet, ReIDEncoder
from ..embedding.sharding import broadcast_object, gather_objects, shard_bounds
from ..utils.errors import InvalidInputError
from ..utils.io import atomic_path, fault_point

logger = logging.getLogger(__name__)

_CHUNK_GLOB = "chunk-*.npz"


def shard_store(index_dir: str | Path) -> Path:
    """The folder of embedded-but-not-yet-indexed chunks of `index_dir`: `.<name>.shards` beside it."""
    index_dir = Path(index_dir).expanduser().absolute()
    return index_dir.parent / f".{index_dir.name}.shards"


def read_shard_store(store: Path, fingerprint: str, settings: dict[str, Any], embedding_dim: int) -> FeatureSet:
    """All rows of the chunks in `store` (empty when there is none); chunks of another model or settings are refused."""
    parts = []
    for chunk in sorted(store.glob(_CHUNK_GLOB)):
        with np.load(chunk, allow_pickle=False) as arrays:
            if str(arrays["fingerprint"]) != fingerprint or json.loads(str(arrays["settings"])) != settings:
                raise InvalidInputError(
                    f"{chunk} was embedded by another model or with other settings: rerun with the same model and "
                    f"options, or delete {store} to start the build over."
                )
            parts.append(
                FeatureSet(arrays["embeddings"], arrays["person_ids"], arrays["camera_ids"], arrays["paths"].tolist())
            )
    return FeatureSet.concatenate(parts, embedding_dim=embedding_dim)


def _write_chunk(store: Path, number: int, part: FeatureSet, fingerprint: str, settings: dict[str, Any]) -> None:
    with atomic_path(store / f"chunk-{number:06d}.npz") as temporary, open(temporary, "wb") as handle:
        np.savez(
            handle,
            embeddings=part.embeddings,
            person_ids=part.person_ids,
            camera_ids=part.camera_ids,
            paths=np.asarray(part.paths, dtype=str),
            fingerprint=np.asarray(fingerprint),
            settings=np.asarray(json.dumps(settings, sort_keys=True)),
        )
    fault_point("index:shard-chunk")


def _remove_store(store: Path) -> None:
    """Deletes the chunk folder once its rows are in the index; a folder holding anything else is left alone."""
    if not store.is_dir():
        return
    entries = list(store.iterdir())
    if any(not entry.match(_CHUNK_GLOB) for entry in entries):
        logger.warning("%s holds files this package did not write: left in place.", store)
        return
    for entry in entries:
        entry.unlink()
    store.rmdir()


def build_from_shards(
    index: Any,
    encoder: ReIDEncoder,
    split: Any,
    *,
    index_dir: str,
    rank: int,
    world_size: int,
    checkpoint_every: int,
) -> int:
    """
    Embeds `split` with `encoder` across `world_size` ranks and adds it to `index` (a [`GalleryIndex`] on rank 0,
    `None` elsewhere), in the split's order; chunks record the encoder's model fingerprint and embedding settings.
    Returns the number of images added (on rank 0; 0 elsewhere).
    """
    store = shard_store(index_dir)
    dim = encoder.model.config.embedding_dim
    recorded = encoder.provenance.index_fields()
    fingerprint, settings = recorded["model_fingerprint"], recorded["embedding_settings"]
    paths = list(split["path"])
    done = stored = None
    if rank == 0:
        stored = read_shard_store(store, fingerprint, settings, dim)
        stored_paths = set(stored.paths)  # embedded by a killed run, not yet in the index
        done = ~index.unindexed(paths) | np.fromiter((path in stored_paths for path in paths), bool, len(paths))
        if done.any():
            print(
                f"resuming {index_dir}: {int(done.sum())} images embedded, {int((~done).sum())} to go "
                f"(world size {world_size})"
            )
    done = broadcast_object(done)
    todo = []
    for r in range(world_size):
        start, stop = shard_bounds(len(paths), r, world_size)
        todo.append(start + np.flatnonzero(~done[start:stop]))
    rounds = max(math.ceil(len(rows) / checkpoint_every) for rows in todo)
    number = len(list(store.glob(_CHUNK_GLOB))) if rank == 0 else 0
    new_parts = []
    for round_index in range(rounds):
        rows = todo[rank][round_index * checkpoint_every : (round_index + 1) * checkpoint_every]
        part = encoder.encode(split.select(rows.tolist())) if len(rows) else FeatureSet.concatenate([], dim)
        gathered = gather_objects(part)
        if rank == 0:
            for piece in gathered:
                if len(piece):
                    _write_chunk(store, number, piece, fingerprint, settings)
                    new_parts.append(piece)
                    number += 1
            print(f"embedded round {round_index + 1}/{rounds} (world size {world_size})")
    if rank != 0:
        return 0
    stored = FeatureSet.concatenate([stored, *new_parts], dim)
    row_of = {path: row for row, path in enumerate(stored.paths)}
    order = np.asarray([row_of[path] for path in paths if path in row_of], dtype=np.int64)

    def batches():  # the split's order and batch size: the stream a single process would have added
        for start in range(0, len(order), encoder.batch_size):
            rows = order[start : start + encoder.batch_size]
            yield FeatureSet(
                stored.embeddings[rows],
                stored.person_ids[rows],
                stored.camera_ids[rows],
                [stored.paths[row] for row in rows],
            )

    added = index.add_batches(batches(), checkpoint_dir=index_dir, checkpoint_every=checkpoint_every)
    _remove_store(store)
    return added
