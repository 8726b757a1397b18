"""Worker for test_ddp.py: trains a tiny LA-Transformer with blockwise unfreezing, alone or under torchrun.

Writes `OUT/rank{R}.pt` with the world size, the initial and final weights and the per-epoch schedule
(trainable blocks, learning rate) seen at each epoch start.
"""

import sys

from training_helpers import save_rank_result, state_of, tiny_trainer
from transformers import TrainerCallback

from hf_lareid.training import BlockwiseUnfreezeCallback


class ScheduleRecorder(TrainerCallback):
    def __init__(self):
        self.schedule = []

    def on_epoch_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        blocks = sum(all(p.requires_grad for p in block.parameters()) for block in model.vit.layers)
        self.schedule.append((blocks, optimizer.param_groups[0]["lr"]))


def main(output_dir: str) -> None:
    recorder = ScheduleRecorder()
    trainer = tiny_trainer(output_dir, [BlockwiseUnfreezeCallback(t=1, lr_decay=0.5), recorder], num_train_epochs=3)
    initial = state_of(trainer.model)
    trainer.train()
    save_rank_result(
        output_dir, trainer.args, initial=initial, final=state_of(trainer.model), schedule=recorder.schedule
    )


if __name__ == "__main__":
    main(sys.argv[1])
