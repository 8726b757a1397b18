"""Training says when it is not learning: the cross-entropy near chance after an epoch, the triplet loss at its margin."""

from __future__ import annotations

import logging
import math
from types import SimpleNamespace

import pytest
import torch
from model_factories import TRAINING_NUM_LABELS, tiny_training_arguments, tiny_training_model

from hf_lareid.training import LATransformerTrainer
from hf_lareid.training.learning_check import LearningCheckCallback

LOGGER = "hf_lareid.training.learning_check"


def end_epoch(check: LearningCheckCallback, epoch: int) -> None:
    check.on_epoch_end(None, SimpleNamespace(epoch=float(epoch), global_step=epoch, is_world_process_zero=True), None)


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def test_cross_entropy_near_chance_after_an_epoch_warns_once_in_one_line(caplog):
    check, chance = LearningCheckCallback(), math.log(100)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for epoch in (1, 2):
            for _ in range(3):
                check.record(ce_per_row=0.95 * chance, num_labels=100)
            end_epoch(check, epoch)
    (warning,) = warnings_of(caplog)  # once, not once per epoch
    assert "\n" not in warning and "after epoch 1" in warning and "0.95 of chance" in warning
    assert check.warning == warning
    assert [e["ce_chance_fraction"] for e in check.epochs] == [pytest.approx(0.95, abs=1e-4)] * 2


def test_cross_entropy_falling_below_nine_tenths_of_chance_gives_no_warning(caplog):
    check, chance = LearningCheckCallback(), math.log(100)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        for epoch, fraction in ((1, 0.85), (2, 0.6)):
            check.record(ce_per_row=fraction * chance, num_labels=100, triplet_loss=0.1, margin=0.3)
            end_epoch(check, epoch)
    assert warnings_of(caplog) == [] and check.warning is None
    assert [e["ce_per_row"] for e in check.epochs] == [
        pytest.approx(0.85 * chance, abs=1e-4),
        pytest.approx(0.6 * chance, abs=1e-4),
    ]


def test_triplet_loss_at_its_margin_for_a_whole_epoch_warns(caplog):
    check = LearningCheckCallback()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for loss in (0.3, 0.305, 0.296):  # within 2 % of the margin at every step
            check.record(ce_per_row=1.0, num_labels=100, triplet_loss=loss, margin=0.3)
        end_epoch(check, 1)
    (warning,) = warnings_of(caplog)
    assert "triplet loss stayed within 2% of its margin" in warning and "epoch 1" in warning


def test_triplet_loss_leaving_its_margin_once_in_an_epoch_gives_no_warning(caplog):
    check = LearningCheckCallback()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for loss in (0.3, 0.25, 0.3):
            check.record(ce_per_row=1.0, num_labels=100, triplet_loss=loss, margin=0.3)
        end_epoch(check, 1)
    assert warnings_of(caplog) == []


class PatternedPeople(torch.utils.data.Dataset):
    """`size` images, each its person's own random pattern (label `i % TRAINING_NUM_LABELS`) plus noise: easy."""

    def __init__(self, size: int = 320):
        generator = torch.Generator().manual_seed(0)
        self.labels = [i % TRAINING_NUM_LABELS for i in range(size)]
        patterns = torch.randn(TRAINING_NUM_LABELS, 3, 32, 16, generator=generator)
        self.pixel_values = patterns[self.labels] + 0.3 * torch.randn(size, 3, 32, 16, generator=generator)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"pixel_values": self.pixel_values[index], "label": self.labels[index]}


def train_two_epochs(tmp_path, learning_rate: float) -> LATransformerTrainer:
    args = tiny_training_arguments(
        tmp_path, learning_rate=learning_rate, num_train_epochs=2, logging_steps=2, per_device_train_batch_size=8
    )
    trainer = LATransformerTrainer(model=tiny_training_model(), args=args, train_dataset=PatternedPeople())
    trainer.train()
    return trainer


def test_the_trainer_warns_when_nothing_trains_and_logs_the_fraction_of_chance(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        trainer = train_two_epochs(tmp_path, learning_rate=0.0)  # a run that cannot learn
    (warning,) = warnings_of(caplog)
    assert "after epoch 1" in warning
    logged = [entry for entry in trainer.state.log_history if "ce_chance_fraction" in entry]
    assert logged and all(entry["ce_chance_fraction"] > 0.9 for entry in logged)
    entry = logged[0]  # the summed cross-entropy over 4 rows, per row, over ln(6)
    assert entry["ce_chance_fraction"] == pytest.approx(
        entry["ce_loss"] / (4 * math.log(TRAINING_NUM_LABELS)), abs=2e-3
    )
    assert [e["epoch"] for e in trainer.learning_check.epochs] == [1, 2]


def test_the_trainer_stays_quiet_when_the_model_learns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        trainer = train_two_epochs(tmp_path, learning_rate=3e-3)  # people told apart by their pattern: easy
    assert warnings_of(caplog) == []
    fractions = [e["ce_chance_fraction"] for e in trainer.learning_check.epochs]
    assert fractions[0] < 0.9 and fractions[1] < fractions[0]
