"""The training losses on hand-computed cases."""

import math

import pytest
import torch
import torch.nn.functional as F

from hf_lareid.training import batch_hard_triplet_loss, part_cross_entropy


def test_part_cross_entropy_is_sum_over_parts_of_batch_means():
    logits = torch.randn(3, 4, 5)
    labels = torch.tensor([0, 2, 4])
    expected = sum(F.cross_entropy(logits[:, p], labels) for p in range(4))
    torch.testing.assert_close(part_cross_entropy(logits, labels), expected)
    assert part_cross_entropy(torch.zeros(2, 4, 10), torch.tensor([1, 3])).item() == pytest.approx(4 * math.log(10))
    smoothed = sum(F.cross_entropy(logits[:, p], labels, label_smoothing=0.2) for p in range(4))
    torch.testing.assert_close(part_cross_entropy(logits, labels, label_smoothing=0.2), smoothed)


def test_batch_hard_triplet_picks_hardest_positive_and_negative():
    # 1-D points: identity 0 at 0 and 1, identity 1 at 1.5 and 4.
    embeddings = torch.tensor([[0.0], [1.0], [1.5], [4.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    # anchor 0: d+ = 1, d- = 1.5 -> max(0, 1 - 1.5 + 1) = 0.5; anchor 1: d+ = 1, d- = 0.5 -> 1.5
    # anchor 2: d+ = 2.5, d- = 0.5 -> 3.0;                       anchor 3: d+ = 2.5, d- = 3 -> 0.5
    loss = batch_hard_triplet_loss(embeddings, labels, margin=1.0)
    assert loss.item() == pytest.approx((0.5 + 1.5 + 3.0 + 0.5) / 4, abs=1e-5)
    loss.backward()
    assert torch.isfinite(embeddings.grad).all()


def test_batch_hard_triplet_without_valid_triplets_is_zero_with_a_graph():
    embeddings = torch.randn(3, 8, requires_grad=True)
    loss = batch_hard_triplet_loss(embeddings, torch.tensor([0, 1, 2]))  # no positives
    assert loss.item() == 0.0 and loss.requires_grad
    separated = torch.eye(2).repeat_interleave(2, dim=0)
    assert batch_hard_triplet_loss(separated, torch.tensor([0, 0, 1, 1]), margin=0.3).item() == pytest.approx(
        0.0, abs=1e-5
    )
