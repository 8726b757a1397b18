"""Identity-balanced batches for metric-learning losses: P identities x K images each.

Example:
    >>> sampler = PKSampler([0, 0, 1, 1, 2, 2, 2, 3], num_identities=2, num_instances=2, seed=0)
    >>> len(sampler) % 4, len(list(sampler)) == len(sampler)
    (0, True)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from ..utils.errors import InvalidInputError

__all__ = ["PKSampler"]


class PKSampler(Sampler[int]):
    """Yields dataset indices so that every run of ``P * K`` consecutive indices is one batch of `num_identities` (P)
    different labels with `num_instances` (K) images each.

    Per epoch, each label's images are shuffled and cut into chunks of K (a label with fewer than K images, or a
    last partial chunk, is filled up by drawing its images again); batches are then formed by repeatedly picking P
    labels that still have chunks, at random, until fewer than P remain. Everything is drawn from
    ``numpy.random.default_rng((seed, epoch))``: the same seed and epoch give the same order in every process.

    Args:
        labels (`Sequence[int]`): class label of each dataset row, e.g. ``dataset["label"]``.
        num_identities (`int`): P, labels per batch.
        num_instances (`int`): K, images per label in a batch. The DataLoader / Trainer batch size must be P * K.
        seed (`int`, *optional*, defaults to 0): base seed.
        num_replicas (`int`, *optional*, defaults to 1): processes sharing the batches. Leave it at 1 with the
            Trainer / accelerate, which hand whole batches to the processes in turn; with plain
            `DistributedDataParallel`, pass the world size and `rank`, and each process then yields every
            `num_replicas`-th batch (the batch count is cut to a multiple of `num_replicas`).
        rank (`int`, *optional*, defaults to 0): this process's rank when `num_replicas` > 1.

    Call :meth:`set_epoch` at the start of every epoch (the Trainer does) to get a new order.

    Example:
        >>> sampler = PKSampler(train["label"], num_identities=16, num_instances=4)  # doctest: +SKIP
        >>> loader = DataLoader(train, batch_size=64, sampler=sampler)  # doctest: +SKIP
    """

    def __init__(
        self,
        labels: Sequence[int],
        num_identities: int,
        num_instances: int,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        labels = np.asarray(labels, dtype=np.int64)
        if labels.ndim != 1 or labels.size == 0:
            raise InvalidInputError("PKSampler needs a non-empty 1-D sequence of labels.")
        if num_identities < 1 or num_instances < 1:
            raise InvalidInputError(
                f"num_identities and num_instances must be >= 1, got {num_identities}, {num_instances}."
            )
        if not 0 <= rank < num_replicas:
            raise InvalidInputError(f"rank must be in [0, num_replicas={num_replicas}), got {rank}.")
        classes, inverse = np.unique(labels, return_inverse=True)
        if len(classes) < num_identities:
            raise InvalidInputError(
                f"PKSampler needs at least num_identities={num_identities} different labels, got {len(classes)}; "
                "lower num_identities."
            )
        self.indices_of = [np.flatnonzero(inverse == i) for i in range(len(classes))]
        self.num_identities = num_identities
        self.num_instances = num_instances
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    @property
    def batch_size(self) -> int:
        """P * K."""
        return self.num_identities * self.num_instances

    def set_epoch(self, epoch: int) -> None:
        """Use the order of `epoch` on the next iteration."""
        self.epoch = int(epoch)

    def batches(self) -> list[np.ndarray]:
        """This process's batches for the current epoch, each an array of P * K dataset indices."""
        rng = np.random.default_rng((self.seed, self.epoch))
        chunks = []
        for indices in self.indices_of:
            shuffled = rng.permutation(indices)
            missing = -len(shuffled) % self.num_instances
            if missing:
                shuffled = np.concatenate([shuffled, rng.choice(indices, size=missing, replace=True)])
            chunks.append(list(shuffled.reshape(-1, self.num_instances)))
        batches = []
        available = [label for label, label_chunks in enumerate(chunks) if label_chunks]
        while len(available) >= self.num_identities:
            picked = rng.choice(available, size=self.num_identities, replace=False)
            batches.append(np.concatenate([chunks[label].pop() for label in picked]))
            available = [label for label in available if chunks[label]]
        usable = len(batches) - len(batches) % self.num_replicas
        return batches[self.rank : usable : self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        for batch in self.batches():
            yield from batch.tolist()

    def __len__(self) -> int:
        return sum(len(batch) for batch in self.batches())
