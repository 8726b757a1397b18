"""Worker for test_ddp.py: the Trainer's retrieval evaluation of a tiny LA-Transformer, alone or under torchrun.

Writes `OUT/rank{R}.pt` with the world size, the metrics `evaluate()` returned on that rank and the number of
images that rank embedded (counted at `model.embed`).
"""

import sys

from model_factories import tiny_training_model
from training_helpers import retrieval_split

from hf_lareid.training import LATransformerTrainer, LATransformerTrainingArguments


def main(output_dir: str) -> None:
    import torch

    model = tiny_training_model(seed=0)
    embedded = []
    embed = model.embed
    model.embed = lambda pixel_values, **kwargs: embedded.append(len(pixel_values)) or embed(pixel_values, **kwargs)
    args = LATransformerTrainingArguments(
        output_dir=output_dir,
        per_device_eval_batch_size=2,
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
        query_dataset=retrieval_split(3, camera=1, seed=1, images_per_id=3),
        gallery_dataset=retrieval_split(4, camera=2, seed=2),
    )
    metrics = trainer.evaluate()
    torch.save(
        {"world_size": args.world_size, "metrics": metrics, "embedded": sum(embedded)},
        f"{output_dir}/rank{args.process_index}.pt",
    )


if __name__ == "__main__":
    main(sys.argv[1])
