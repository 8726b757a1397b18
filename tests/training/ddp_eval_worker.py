"""Worker for test_ddp.py: the Trainer's retrieval evaluation of a tiny LA-Transformer, alone or under torchrun.

Writes `OUT/rank{R}.pt` with the world size, the metrics `evaluate()` returned on that rank and the number of
images that rank embedded (counted at `model.embed`).
"""

import sys

from model_factories import tiny_training_arguments, tiny_training_model
from training_helpers import retrieval_split, save_rank_result

from hf_lareid.training import LATransformerTrainer


def main(output_dir: str) -> None:
    model = tiny_training_model(seed=0)
    embedded = []
    embed = model.embed
    model.embed = lambda pixel_values, **kwargs: embedded.append(len(pixel_values)) or embed(pixel_values, **kwargs)
    trainer = LATransformerTrainer(
        model=model,
        args=tiny_training_arguments(output_dir, per_device_eval_batch_size=2),
        query_dataset=retrieval_split(3, camera=1, seed=1, images_per_id=3),
        gallery_dataset=retrieval_split(4, camera=2, seed=2),
    )
    metrics = trainer.evaluate()
    save_rank_result(output_dir, trainer.args, metrics=metrics, embedded=sum(embedded))


if __name__ == "__main__":
    main(sys.argv[1])
