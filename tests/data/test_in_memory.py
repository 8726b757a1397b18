"""InMemoryReIDDataset: images decoded and resized once give the same training inputs as the per-step path."""

import pytest
import torch
from test_transforms import OFF, processor  # noqa: F401  (the same 32x16 processor fixture)

from hf_lareid.data import build_train_transform, load_reid_dataset
from hf_lareid.data.in_memory import InMemoryReIDDataset


@pytest.fixture
def train(market_dir, cache_dir):
    return load_reid_dataset("market1501", data_dir=market_dir, splits=["train"], cache_dir=cache_dir)["train"]


def test_decoded_once_equals_the_per_step_transform(train, processor):
    transform = build_train_transform(processor, **OFF)
    decoded = InMemoryReIDDataset(train, transform)
    assert len(decoded) == len(train) and decoded.images.dtype == torch.uint8
    assert decoded.images.shape == (len(train), 3, 32, 16)
    assert decoded.labels == train["label"]
    per_step = train.with_transform(transform)
    for index in (0, len(train) - 1):
        item = decoded[index]
        assert item["label"] == per_step[index]["label"]
        torch.testing.assert_close(item["pixel_values"], per_step[index]["pixel_values"], rtol=0, atol=1e-5)


def test_augmentations_run_at_every_access(train, processor):
    flipped = InMemoryReIDDataset(train, build_train_transform(processor, **{**OFF, "hflip_p": 1.0}))
    plain = InMemoryReIDDataset(train, build_train_transform(processor, **OFF))
    torch.testing.assert_close(flipped[0]["pixel_values"], plain[0]["pixel_values"].flip(-1))
    erased = InMemoryReIDDataset(train, build_train_transform(processor, **{**OFF, "erasing_p": 1.0}))
    torch.manual_seed(0)
    first = erased[0]["pixel_values"]
    assert not torch.equal(first, erased[0]["pixel_values"])  # a new box every time
    assert not torch.equal(first, plain[0]["pixel_values"])


def test_missing_column_is_a_clear_error(train, processor):
    with pytest.raises(ValueError, match="needs the 'label' column"):
        InMemoryReIDDataset(train.remove_columns("label"), build_train_transform(processor))


def test_seeded_augmentations_equal_the_per_step_path_and_follow_the_epoch(train, processor):
    transform = build_train_transform(processor, **{**OFF, "hflip_p": 0.5, "erasing_p": 0.5}, seed=3)
    decoded = InMemoryReIDDataset(train, transform)
    per_step = train.with_transform(transform)
    rows = range(len(train))
    epoch_0 = [decoded[i]["pixel_values"] for i in rows]
    for i in rows:  # the same (seed, epoch, path) seeds: the same augmentation as decoding every step
        torch.testing.assert_close(epoch_0[i], per_step[i]["pixel_values"], rtol=0, atol=1e-5)
        assert torch.equal(decoded[i]["pixel_values"], epoch_0[i])  # and again at every access
    decoded.set_epoch(1)
    assert any(not torch.equal(decoded[i]["pixel_values"], epoch_0[i]) for i in rows)
    assert decoded.seed == 3


def test_the_trainer_finds_the_epoch_hook(train, processor):
    from hf_lareid.training.transform_epoch import epoch_transform_of

    decoded = InMemoryReIDDataset(train, build_train_transform(processor, seed=0))
    assert epoch_transform_of(decoded) is decoded  # LATransformerTrainer adds its TransformEpochCallback for it
    decoded.set_epoch(4)
    assert decoded.transform.epoch == 4
