"""PKSampler: batch composition, determinism per seed and epoch, DDP sharding."""

from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from hf_lareid.data import PKSampler

# 10 labels with 1..10 images each.
LABELS = [label for label in range(10) for _ in range(label + 1)]


def _batches(sampler):
    indices = list(sampler)
    assert len(indices) == len(sampler) and len(indices) % sampler.batch_size == 0
    return [indices[i : i + sampler.batch_size] for i in range(0, len(indices), sampler.batch_size)]


def test_each_batch_is_p_labels_times_k_images():
    sampler = PKSampler(LABELS, num_identities=3, num_instances=4, seed=0)
    batches = _batches(sampler)
    assert len(batches) >= 3
    for batch in batches:
        counts = Counter(LABELS[index] for index in batch)
        assert len(counts) == 3 and set(counts.values()) == {4}
    # A label with a single image still appears (its image repeated K times).
    seen = Counter(LABELS[index] for batch in batches for index in batch)
    assert set(seen) <= set(range(10)) and len(seen) >= 3


def test_no_repeats_when_every_label_has_k_multiples():
    labels = [label for label in range(6) for _ in range(4)]
    sampler = PKSampler(labels, num_identities=2, num_instances=2, seed=1)
    assert sorted(sampler) == list(range(24))  # every image exactly once per epoch


def test_deterministic_per_seed_and_epoch():
    first, second = PKSampler(LABELS, 2, 2, seed=5), PKSampler(LABELS, 2, 2, seed=5)
    assert list(first) == list(second)
    first.set_epoch(1)
    assert list(first) != list(second)
    second.set_epoch(1)
    assert list(first) == list(second)
    assert list(PKSampler(LABELS, 2, 2, seed=6)) != list(PKSampler(LABELS, 2, 2, seed=5))


def test_ddp_shards_are_disjoint_whole_batches():
    full = PKSampler(LABELS, 2, 2, seed=3)
    shards = [PKSampler(LABELS, 2, 2, seed=3, num_replicas=2, rank=rank) for rank in range(2)]
    full_batches = _batches(full)
    shard_batches = [_batches(shard) for shard in shards]
    assert len(shard_batches[0]) == len(shard_batches[1]) == len(full_batches) // 2
    assert shard_batches[0] == full_batches[0 : 2 * len(shard_batches[0]) : 2]
    assert shard_batches[1] == full_batches[1 : 2 * len(shard_batches[1]) : 2]


def test_with_dataloader():
    dataset = TensorDataset(torch.arange(len(LABELS)), torch.tensor(LABELS))
    loader = DataLoader(dataset, batch_size=6, sampler=PKSampler(LABELS, 3, 2, seed=0))
    for _, labels in loader:
        assert sorted(Counter(labels.tolist()).values()) == [2, 2, 2]


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least num_identities=20"):
        PKSampler(LABELS, 20, 2)
    with pytest.raises(ValueError, match="rank"):
        PKSampler(LABELS, 2, 2, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="non-empty"):
        PKSampler(np.array([]), 2, 2)


def test_accelerate_batch_shards_keep_pk_batches():
    """Under the Trainer, accelerate deals whole batches of the (unsharded) sampler to the processes."""
    from accelerate.data_loader import BatchSamplerShard
    from torch.utils.data import BatchSampler

    shards = [
        list(BatchSamplerShard(BatchSampler(PKSampler(LABELS, 2, 3, seed=0), 6, drop_last=True), 2, rank))
        for rank in range(2)
    ]
    assert shards[0] and len(shards[0]) == len(shards[1])
    for batch in shards[0] + shards[1]:
        assert sorted(Counter(LABELS[index] for index in batch).values()) == [3, 3]
    assert not {tuple(batch) for batch in shards[0]} & {tuple(batch) for batch in shards[1]}
