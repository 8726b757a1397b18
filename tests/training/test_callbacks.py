"""BlockwiseUnfreezeCallback: Algorithm 1's schedule, what it freezes, learning-rate persistence, exact resume."""

from __future__ import annotations

import pytest
import torch
from model_factories import tiny_training_model
from training_helpers import tiny_trainer
from transformers import TrainerCallback

from hf_lareid.training import (
    BlockwiseUnfreezeCallback,
    LATransformerTrainer,
    blockwise_unfreeze_schedule,
    format_unfreeze_schedule,
    original_unfreeze_schedule,
)


def algorithm_1(num_blocks: int, num_epochs: int, t: int, lr: float, lr_decay: float) -> list[tuple[int, float]]:
    """The paper's pseudo-code transcribed literally: (number of unfrozen blocks, lr) during each epoch."""
    b, unfrozen, out = num_blocks, 0, []
    i = 0
    while 0 <= i < num_epochs:
        if i % t == 0 and b > 0:
            unfrozen += 1  # unfreeze B[b]
            b -= 1
            lr = lr * lr_decay
        out.append((unfrozen, lr))
        i += 1
    return out


def test_schedule_t2_decay08_4_blocks_10_epochs_matches_algorithm_1():
    schedule = blockwise_unfreeze_schedule(num_blocks=4, num_epochs=10, t=2, lr_decay=0.8)
    print("\n" + format_unfreeze_schedule(schedule, num_blocks=4))
    expected = algorithm_1(4, 10, t=2, lr=1.0, lr_decay=0.8)
    assert len(schedule) == 10
    for stage, (unfrozen, lr_factor) in zip(schedule, expected):
        assert stage.num_trainable_blocks == unfrozen, stage
        assert stage.lr_factor == pytest.approx(lr_factor)
    # Spelled out: epoch 0 already trains the top block at lr * 0.8 (no off-by-one), one more block every 2 epochs.
    assert [s.num_trainable_blocks for s in schedule] == [1, 1, 2, 2, 3, 3, 4, 4, 4, 4]
    assert [s.unfrozen_block for s in schedule] == [3, None, 2, None, 1, None, 0, None, None, None]
    assert schedule[-1].lr_factor == pytest.approx(0.8**4)


def original_code(num_blocks: int, num_epochs: int, unfreeze_after: int, lr: float, lr_decay: float):
    """The original training notebook's loop transcribed: (trainable blocks, lr) during each epoch.

    `freeze_all_blocks` freezes `blocks[:num_blocks]`; `unfreeze_blocks(model, amount)` sets `requires_grad=True` on
    `blocks[num_blocks - 1 - amount:]` (`blocks[11-amount:]` for ViT-B); the embeddings are never frozen."""
    trainable, unfrozen_blocks, out = [False] * num_blocks, 0, []
    for epoch in range(num_epochs):
        if epoch % unfreeze_after == 0:
            unfrozen_blocks += 1
            for index in range(num_blocks)[num_blocks - 1 - unfrozen_blocks :]:
                trainable[index] = True
            lr *= lr_decay
        out.append((sum(trainable), lr))
    return out


def test_original_schedule_matches_the_original_training_loop():
    schedule = original_unfreeze_schedule(num_blocks=12, num_epochs=30, t=2, lr_decay=0.8)
    expected = original_code(12, 30, unfreeze_after=2, lr=1.0, lr_decay=0.8)
    assert [(s.num_trainable_blocks, pytest.approx(s.lr_factor)) for s in schedule] == expected
    # Spelled out: two blocks at epoch 0, all 12 from epoch 20, and the rate keeps decaying (no b > 0 stop).
    assert [s.num_trainable_blocks for s in schedule[:6]] == [2, 2, 3, 3, 4, 4]
    assert schedule[20].num_trainable_blocks == 12 and schedule[29].lr_factor == pytest.approx(0.8**15)
    assert [s.unfrozen_block for s in schedule[:4]] == [10, None, 9, None]
    assert schedule[22].unfrozen_block is None  # nothing left to unfreeze, the rate still decays
    assert schedule[22].lr_factor == pytest.approx(0.8**12)


def test_original_schedule_never_freezes_the_embeddings():
    model = tiny_training_model()  # 4 blocks
    callback = BlockwiseUnfreezeCallback(t=2, lr_decay=0.8, schedule="original")
    assert callback.apply(0, model).num_trainable_blocks == 2
    assert [trainable(block) for block in model.vit.layers] == [False, False, True, True]
    assert trainable(model.vit.embeddings) and trainable(model.vit.layernorm)
    assert [s.num_trainable_blocks for s in callback.schedule(4, 6)] == [2, 2, 3, 3, 4, 4]
    with pytest.raises(ValueError, match="unfreeze schedule must be one of"):
        BlockwiseUnfreezeCallback(schedule="paper")


def test_invalid_options_are_rejected():
    with pytest.raises(ValueError, match="t"):
        BlockwiseUnfreezeCallback(t=0)
    with pytest.raises(ValueError, match="lr_decay"):
        BlockwiseUnfreezeCallback(lr_decay=1.5)
    with pytest.raises(TypeError, match="model.vit"):
        BlockwiseUnfreezeCallback().apply(0, torch.nn.Linear(2, 2))


def test_a_scheduler_without_base_lrs_is_named_as_a_flag_to_change():
    """`--lr_scheduler_type reduce_lr_on_plateau` with blockwise unfreezing: one line naming the flag, not a bug."""
    from hf_lareid.utils.errors import InvalidInputError

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    with pytest.raises(InvalidInputError, match="ReduceLROnPlateau has none. Use a LambdaLR-based lr_scheduler_type"):
        BlockwiseUnfreezeCallback._set_learning_rate(0.5, optimizer, plateau)


def trainable(module: torch.nn.Module) -> bool:
    return all(p.requires_grad for p in module.parameters())


def test_apply_freezes_lower_blocks_and_embeddings_idempotently():
    model = tiny_training_model()
    callback = BlockwiseUnfreezeCallback(t=2, lr_decay=0.8)
    for _ in range(2):  # applying the same epoch twice changes nothing
        callback.apply(2, model)
        assert [trainable(block) for block in model.vit.layers] == [False, False, True, True]
        assert not any(p.requires_grad for p in model.vit.embeddings.parameters())
        assert trainable(model.vit.layernorm) and trainable(model.part_classifiers)
    callback.apply(6, model)  # all blocks: the embeddings unfreeze with the lowest one
    assert all(trainable(block) for block in model.vit.layers) and trainable(model.vit.embeddings)
    callback.apply(0, model)  # derived from the epoch, not from history: going back re-freezes
    assert [trainable(block) for block in model.vit.layers] == [False, False, False, True]

    options = BlockwiseUnfreezeCallback(train_final_norm=False, unfreeze_embeddings_with_first_block=False)
    options.apply(9, model)
    assert not any(p.requires_grad for p in model.vit.layernorm.parameters())
    assert not any(p.requires_grad for p in model.vit.embeddings.parameters())


def test_frozen_blocks_record_no_autograd_graph():
    model = tiny_training_model()
    BlockwiseUnfreezeCallback().apply(0, model)
    captured = {}
    model.vit.layers[2].register_forward_hook(lambda module, inputs, output: captured.update(low=output))
    model.vit.layers[3].register_forward_hook(lambda module, inputs, output: captured.update(top=output))
    model(torch.randn(2, 3, 32, 16), labels=torch.tensor([0, 1])).loss.backward()
    low = captured["low"][0] if isinstance(captured["low"], tuple) else captured["low"]
    top = captured["top"][0] if isinstance(captured["top"], tuple) else captured["top"]
    assert low.grad_fn is None and not low.requires_grad  # nothing recorded below the top block
    assert top.grad_fn is not None
    assert all(p.grad is None for p in model.vit.layers[2].parameters())
    assert all(p.grad is not None for p in model.vit.layers[3].parameters())


class Recorder(TrainerCallback):
    """
    Records, at each epoch start (after the unfreeze callback), the trainable blocks and the learning rate, and,
    right before every optimizer step, `(global step, learning rate of every param group)`: the rates that step
    actually uses.
    """

    def __init__(self):
        self.epochs = []
        self.steps = []

    def on_epoch_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        blocks = sum(trainable(block) for block in model.vit.layers)
        self.epochs.append((blocks, optimizer.param_groups[0]["lr"]))

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        self.steps.append((state.global_step, [group["lr"] for group in optimizer.param_groups]))


def assert_every_step_uses_the_stage_lr(trainer, recorder, lr, lr_decay, steps_per_epoch, first_step=0):
    """
    The stage's learning rate (t=1: `lr * lr_decay ** (epoch + 1)`) is used by EVERY optimizer step of the epoch and
    logged at every step, not only at the epoch's first step: setting only the param groups' `lr` would be undone
    by the scheduler's first step.
    """
    expected = lambda step: lr * lr_decay ** (step // steps_per_epoch + 1)  # noqa: E731  (step: 0-based)
    assert [step for step, _ in recorder.steps] == list(range(first_step, trainer.state.global_step))
    for step, lrs in recorder.steps:
        assert lrs == pytest.approx([expected(step)] * len(lrs)), f"optimizer step {step}"
    history = trainer.state.log_history
    logged = [(entry["step"], entry["learning_rate"]) for entry in history if "learning_rate" in entry]
    # logging_steps=1; the logged step counts from 1; a resumed run's history holds the steps before the resume.
    assert [step for step, _ in logged] == list(range(1, trainer.state.global_step + 1))
    for step, logged_lr in logged:
        assert logged_lr == pytest.approx(expected(step - 1)), f"logged step {step}"


class StopAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def make_trainer(output_dir, callbacks, **overrides) -> LATransformerTrainer:
    """`tiny_trainer`: 4 epochs of 4 steps, every step logged."""
    return tiny_trainer(output_dir, callbacks, **{"num_train_epochs": 4, "logging_steps": 1, **overrides})


def test_schedule_and_learning_rate_in_a_real_run(tmp_path):
    recorder = Recorder()
    trainer = make_trainer(tmp_path, [BlockwiseUnfreezeCallback(t=1, lr_decay=0.5), recorder])
    initial = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    assert trainer.args.lr_scheduler_type == "constant"  # "auto" with the callback on
    assert recorder.epochs == [(1, 5e-4), (2, 2.5e-4), (3, 1.25e-4), (4, 6.25e-5)]
    assert_every_step_uses_the_stage_lr(trainer, recorder, lr=1e-3, lr_decay=0.5, steps_per_epoch=4)
    logged = [entry["trainable_blocks"] for entry in trainer.state.log_history if "trainable_blocks" in entry]
    assert logged == [1, 2, 3, 4]
    # Every parameter is in the optimizer, so blocks unfrozen mid-run did train.
    optimizer_params = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert optimizer_params == {id(p) for p in trainer.model.parameters()}
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(p, initial[n])}
    assert any(n.startswith("vit.layers.0.") for n in changed)  # unfrozen at the last epoch
    assert any(n.startswith("vit.embeddings.") for n in changed)
    # After training the model is left fully trainable again.
    assert all(p.requires_grad for p in trainer.model.parameters())


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_activation_checkpointing_with_blockwise_unfreezing_trains_the_top_block(tmp_path, use_reentrant):
    """Reentrant checkpointing used to leave the unfrozen top block without gradients: only the heads trained."""
    trainer = make_trainer(
        tmp_path,
        [BlockwiseUnfreezeCallback(t=1)],
        num_train_epochs=1,
        activation_checkpointing=True,
        activation_checkpointing_kwargs={"use_reentrant": use_reentrant},
    )
    initial = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    assert trainer.model.is_activation_checkpointing
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(p, initial[n])}
    top = {n for n, _ in trainer.model.vit.layers[-1].named_parameters(prefix="vit.layers.3")}
    assert top and top <= changed  # every parameter of the one unfrozen block trained
    assert not any(n.startswith(("vit.layers.0.", "vit.embeddings.")) for n in changed)


def test_stopped_and_resumed_run_equals_uninterrupted_run(tmp_path):
    uninterrupted = make_trainer(tmp_path / "a", [BlockwiseUnfreezeCallback(t=1, lr_decay=0.8)])
    uninterrupted.train()

    # Stop mid-epoch 1 (step 6 of 16, 4 steps per epoch), with a checkpoint there.
    stopped = make_trainer(
        tmp_path / "b", [BlockwiseUnfreezeCallback(t=1, lr_decay=0.8), StopAt(6)], save_strategy="steps", save_steps=6
    )
    stopped.train()
    assert stopped.state.global_step == 6
    resumed_recorder = Recorder()
    resumed = make_trainer(
        tmp_path / "b", [BlockwiseUnfreezeCallback(t=1, lr_decay=0.8), resumed_recorder], save_strategy="no"
    )
    resumed.train(resume_from_checkpoint=str(tmp_path / "b" / "checkpoint-6"))
    assert resumed.state.global_step == 16
    # The resumed run started in epoch 1 with 2 blocks at lr 1e-3 * 0.8**2, then went on as scheduled.
    assert [blocks for blocks, _ in resumed_recorder.epochs] == [2, 3, 4]
    assert resumed_recorder.epochs[0][1] == pytest.approx(1e-3 * 0.8**2)
    assert_every_step_uses_the_stage_lr(
        resumed, resumed_recorder, lr=1e-3, lr_decay=0.8, steps_per_epoch=4, first_step=6
    )
    expected = dict(uninterrupted.model.named_parameters())
    for name, param in resumed.model.named_parameters():
        torch.testing.assert_close(param, expected[name], atol=1e-6, rtol=0, msg=name)
