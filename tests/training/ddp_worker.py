"""Worker for test_ddp.py: trains a tiny LA-Transformer with blockwise unfreezing, alone or under torchrun.

Writes `OUT/rank{R}.pt` with the world size, the initial and final weights and the per-epoch schedule
(trainable blocks, learning rate) seen at each epoch start.
"""

import sys

import torch
from model_factories import tiny_training_model
from training_helpers import RandomReIDDataset, state_of
from transformers import TrainerCallback

from hf_lareid.training import BlockwiseUnfreezeCallback, LATransformerTrainer, LATransformerTrainingArguments


class ScheduleRecorder(TrainerCallback):
    def __init__(self):
        self.schedule = []

    def on_epoch_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        blocks = sum(all(p.requires_grad for p in block.parameters()) for block in model.vit.layers)
        self.schedule.append((blocks, optimizer.param_groups[0]["lr"]))


def main(output_dir: str) -> None:
    model = tiny_training_model(seed=0)
    initial = state_of(model)
    recorder = ScheduleRecorder()
    args = LATransformerTrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=4,
        num_train_epochs=3,
        learning_rate=1e-3,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
        save_strategy="no",
        seed=0,
        dataloader_num_workers=0,
    )
    trainer = LATransformerTrainer(
        model=model,
        args=args,
        train_dataset=RandomReIDDataset(16),
        callbacks=[BlockwiseUnfreezeCallback(t=1, lr_decay=0.5), recorder],
    )
    trainer.train()
    torch.save(
        {
            "world_size": args.world_size,
            "initial": initial,
            "final": state_of(trainer.model),
            "schedule": recorder.schedule,
        },
        f"{output_dir}/rank{args.process_index}.pt",
    )


if __name__ == "__main__":
    main(sys.argv[1])
