"""`tiny`'s defaults are the reference recipe: a plain PyTorch loop and `lareid train --setup tiny` lose the same.

The reference recipe (issue 20), written out below as a plain loop: the setup's model built from the seed; each epoch a
fresh random permutation of all training images (torch's generator seeded with `seed + epoch`, as the Trainer's
sampler does) cut into batches of 64, the last partial batch dropped; the images decoded once and flipped with p 0.5
(the same augmented images: the training set object is shared); loss = the model's summed per-row cross-entropy;
AdamW (lr 1e-3, weight decay 0.05 on every parameter, betas 0.9/0.999); torch's OneCycleLR (max lr 1e-3,
pct_start 0.1, its other defaults) stepped every batch over 6 epochs; no gradient clipping. The `lareid train` path
gets nothing but the setup (a copy of `tiny` at toy size, its training_args.json untouched) and the seed.
"""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import torch
from torch.utils.data import DataLoader

from hf_lareid import LATransformerForReID
from hf_lareid.hub.setups import setup_path
from hf_lareid.scripts.train import parse_arguments, prepare_trainer

SEED = 0
COMPARED_STEPS = 20
BATCH_SIZE, EPOCHS = 64, 6  # the tiny setup's; the test checks them from its training_args.json


def toy_tiny_setup(folder):
    """`tiny` with a toy model (2 blocks of width 32, 32x16 crops, patch 8: 4 row parts); the recipe as shipped."""
    shutil.copytree(setup_path("tiny"), folder)
    config = json.loads((folder / "config.json").read_text())
    config["backbone_config"].update(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=[32, 16]
    )
    (folder / "config.json").write_text(json.dumps(config))
    processor = json.loads((folder / "preprocessor_config.json").read_text())
    processor["size"] = {"height": 32, "width": 16}
    (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    return folder


def reference_loop(config, train, seed: int, num_steps: int) -> tuple[dict, list[float]]:
    """The reference recipe as a plain PyTorch loop; returns (initial weights, the first `num_steps` losses)."""
    torch.manual_seed(seed)
    model = LATransformerForReID(config).train()
    initial = copy.deepcopy(model.state_dict())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05)
    steps_per_epoch = len(train) // BATCH_SIZE  # the last partial batch is dropped
    assert steps_per_epoch * EPOCHS > num_steps
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=1e-3, total_steps=EPOCHS * steps_per_epoch, pct_start=0.1
    )
    torch.manual_seed(seed)  # the head dropout (and each DataLoader's worker seed) draws from here on
    losses: list[float] = []
    for epoch in range(EPOCHS):
        train.set_epoch(epoch)  # the seeded flips of this epoch
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed + epoch)).tolist()
        for batch in DataLoader(train, batch_size=BATCH_SIZE, sampler=order, drop_last=True):
            loss = model(pixel_values=batch["pixel_values"], labels=batch["label"]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            if len(losses) == num_steps:
                return initial, losses
    return initial, losses


def test_lareid_train_setup_tiny_gives_the_reference_loops_losses_step_by_step(tmp_path):
    setup = toy_tiny_setup(tmp_path / "setup")
    recipe = json.loads((setup / "training_args.json").read_text())
    assert (recipe["per_device_train_batch_size"], recipe["num_train_epochs"]) == (BATCH_SIZE, EPOCHS)
    flags = ["--setup", str(setup), "--output_dir", str(tmp_path / "out"), "--seed", str(SEED), "--bf16", "False"]
    flags += ["--dataset", "synthetic", "--data_dir", str(tmp_path / "data"), "--synthetic_num_ids", "34"]
    flags += ["--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "True"]
    trainer = prepare_trainer(parse_arguments(flags))
    train = trainer.train_dataset
    assert len(train) == 17 * 4 * 4 and len(train) % BATCH_SIZE  # 272 images: 4 batches, 16 dropped per epoch
    initial_trainer_weights = copy.deepcopy(trainer.model.state_dict())
    trainer_losses: list[float] = []

    def keep_loss(module, inputs, outputs):
        if module.training:
            trainer_losses.append(outputs.loss.item())

    trainer.model.register_forward_hook(keep_loss)
    trainer.train()
    assert trainer.state.global_step == EPOCHS * (len(train) // BATCH_SIZE) > COMPARED_STEPS

    initial, reference_losses = reference_loop(trainer.model.config, train, SEED, COMPARED_STEPS)
    for name, tensor in initial.items():
        torch.testing.assert_close(initial_trainer_weights[name], tensor, rtol=0, atol=0, msg=name)
    assert len(reference_losses) == COMPARED_STEPS
    assert trainer_losses[:COMPARED_STEPS] == pytest.approx(reference_losses, abs=1e-4)
    assert reference_losses[-1] < reference_losses[0]  # it learns, too
