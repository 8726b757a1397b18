"""Interrupted training resumes exactly: every augmentation and head dropout on, killed mid-epoch, same final weights.

The augmentations draw from generators seeded by (seed, epoch, image path), so the batch fetched before the
Trainer restores `rng_state.pth` is augmented as in the uninterrupted run, and dropout draws from the restored
global generator alone. The interrupt test SIGKILLs a real `lareid train` when its k-th checkpoint folder appears
(polled, never a timed point).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from cli_helpers import QUICK_TRAINING, flags
from model_factories import tiny_training_arguments, tiny_training_model
from safetensors.torch import load_file
from transformers import ViTImageProcessorPil

from hf_lareid.data import build_train_transform, generate_synthetic_reid, load_reid_dataset
from hf_lareid.training import LATransformerTrainer
from hf_lareid.training.transform_epoch import TransformEpochCallback

EVERY_AUGMENTATION = dict(hflip_p=0.5, vflip_p=0.5, color_jitter_p=0.8, erasing_p=0.5)


@pytest.fixture(scope="module")
def train_split(tmp_path_factory):
    """6 identities x 2 cameras x 2 images = 24 training images (32x16)."""
    root = tmp_path_factory.mktemp("resume")
    data_dir = generate_synthetic_reid(
        root / "data", num_ids=12, num_cameras=2, images_per_camera=2, image_size=(32, 16)
    )
    return load_reid_dataset("market1501", data_dir=data_dir, splits=["train"], cache_dir=root / "cache")["train"]


@pytest.fixture(scope="module")
def processor():
    return ViTImageProcessorPil(size={"height": 32, "width": 16}, resample=3)


def make_trainer(output_dir, train, processor, **overrides) -> LATransformerTrainer:
    """Head dropout 0.5, every augmentation (seeded unless `train` has a transform), 6 steps per epoch (24 images,
    batch 4), 9 steps."""
    if train.format["type"] is None:
        train = train.with_transform(build_train_transform(processor, seed=7, **EVERY_AUGMENTATION))
    fields = dict(max_steps=9, save_strategy="steps", save_steps=1, logging_steps=1, optimizer="adamw")
    model = tiny_training_model(seed=0, head_dropout=0.5, num_labels=train.features["label"].num_classes)
    args = tiny_training_arguments(output_dir, **{**fields, **overrides})
    return LATransformerTrainer(model=model, args=args, train_dataset=train)


def weights(trainer) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in trainer.model.state_dict().items()}


def assert_same_weights(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert got.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=1e-6, rtol=0, msg=name)


def test_seeded_augmentation_leaves_the_global_generator_alone(train_split, processor):
    transform = build_train_transform(processor, seed=3, **EVERY_AUGMENTATION)
    rows = train_split[:4]
    torch.manual_seed(0)
    first = transform(rows)["pixel_values"]
    after = torch.rand(3)
    torch.manual_seed(1)  # another global state: same augmentations
    torch.testing.assert_close(transform(rows)["pixel_values"], first, atol=0, rtol=0)
    torch.manual_seed(0)
    torch.testing.assert_close(torch.rand(3), after, atol=0, rtol=0)  # the transform drew nothing from it
    # One image alone or inside its batch: the same augmentation (it depends on the image, not its position).
    single = transform({key: values[2:3] for key, values in rows.items()})["pixel_values"]
    torch.testing.assert_close(single[0], first[2], atol=0, rtol=0)
    transform.set_epoch(1)
    assert not torch.equal(transform(rows)["pixel_values"], first)  # a new epoch, new augmentations
    plain = build_train_transform(processor, hflip_p=0, vflip_p=0, color_jitter_p=0)(rows)["pixel_values"]
    assert not torch.equal(first, plain)  # the augmentations did something


@pytest.mark.parametrize("resume_step", [3, 7])  # mid-epoch 0; mid-epoch 1 (after an epoch boundary)
def test_mid_epoch_resume_with_augmentations_and_dropout_is_exact(tmp_path, train_split, processor, resume_step):
    uninterrupted = make_trainer(tmp_path / "a", train_split, processor, save_steps=resume_step)
    assert any(isinstance(cb, TransformEpochCallback) for cb in uninterrupted.callback_handler.callbacks)
    uninterrupted.train()
    expected = weights(uninterrupted)
    resumed = make_trainer(tmp_path / "b", train_split, processor, save_steps=resume_step)
    resumed.train(resume_from_checkpoint=str(tmp_path / "a" / f"checkpoint-{resume_step}"))
    assert resumed.state.global_step == 9
    assert_same_weights(weights(resumed), expected)


def test_unseeded_augmentation_does_not_resume_exactly(tmp_path, train_split, processor):
    """Why the seed matters: drawn from the global generator, the first resumed batch is augmented differently."""
    unseeded = train_split.with_transform(build_train_transform(processor, **EVERY_AUGMENTATION))
    uninterrupted = make_trainer(tmp_path / "a", unseeded, processor, save_steps=3)
    uninterrupted.train()
    resumed = make_trainer(tmp_path / "b", unseeded, processor, save_steps=3)
    resumed.train(resume_from_checkpoint=str(tmp_path / "a" / "checkpoint-3"))
    expected, got = weights(uninterrupted), weights(resumed)
    assert any((got[name] - expected[name]).abs().max() > 1e-4 for name in expected)


FAST = [
    *QUICK_TRAINING,
    *flags(per_device_train_batch_size=4, max_steps=8, save_strategy="steps", save_steps=1),
    *flags(**EVERY_AUGMENTATION, dataloader_num_workers=0),
]


def lareid_train(output_dir: Path, data_dir: Path, *extra: str) -> tuple[subprocess.Popen, Path]:
    """Starts `lareid train` (the CLI's main in a child process); its output goes to a log file (a full pipe could
    block the child before the awaited checkpoint)."""
    code = "import sys; from hf_lareid.cli.main import main; sys.exit(main(sys.argv[1:]))"
    argv = [
        sys.executable,
        "-c",
        code,
        "train",
        "--output_dir",
        str(output_dir),
        "--data_dir",
        str(data_dir),
        *FAST,
        *extra,
    ]
    log = output_dir.with_name(f"{output_dir.name}-{len(list(output_dir.parent.glob('*.log')))}.log")
    with log.open("w") as sink:
        process = subprocess.Popen(
            argv, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"}
        )
    return process, log


def finish(process: subprocess.Popen, log: Path) -> None:
    assert process.wait(timeout=600) == 0, log.read_text()[-3000:]


def test_sigkill_at_the_kth_checkpoint_then_resume_equals_uninterrupted(tmp_path):
    """`lareid train` killed (SIGKILL) when checkpoint-5 appears, resumed with --resume_from_checkpoint True."""
    data_dir = tmp_path / "synthetic"
    finish(*lareid_train(tmp_path / "a", data_dir))

    killed, log = lareid_train(tmp_path / "b", data_dir)
    checkpoint = tmp_path / "b" / "checkpoint-5"
    while not checkpoint.exists() and killed.poll() is None:
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=60) == -signal.SIGKILL, (
        f"the run ended before checkpoint-5 appeared: {log.read_text()[-2000:]}"
    )
    assert not (tmp_path / "b" / "model.safetensors").exists()

    finish(*lareid_train(tmp_path / "b", data_dir, "--resume_from_checkpoint", "True"))
    assert_same_weights(
        load_file(tmp_path / "b" / "model.safetensors"), load_file(tmp_path / "a" / "model.safetensors")
    )


def test_seeded_transform_refuses_persistent_workers(tmp_path, train_split, processor):
    with pytest.raises(ValueError, match="persistent DataLoader workers"):
        make_trainer(tmp_path, train_split, processor, dataloader_num_workers=1, dataloader_persistent_workers=True)
