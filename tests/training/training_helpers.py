"""Random data and the tiny trainer shared by the training tests (also imported by the DDP worker scripts); the tiny
model and its arguments are `model_factories.tiny_training_model` / `tiny_training_arguments`."""

from __future__ import annotations

import torch
from model_factories import TRAINING_NUM_LABELS, tiny_training_arguments, tiny_training_model

from hf_lareid.training import LATransformerTrainer


class RandomReIDDataset(torch.utils.data.Dataset):
    """`size` examples `{"pixel_values": (3, 32, 16), "label": int}`, fixed by `seed`; labels cycle over TRAINING_NUM_LABELS."""

    def __init__(self, size: int = 16, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.pixel_values = torch.randn(size, 3, 32, 16, generator=generator)
        self.labels = [i % TRAINING_NUM_LABELS for i in range(size)]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"pixel_values": self.pixel_values[index], "label": self.labels[index]}


def state_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def retrieval_split(num_ids: int, camera: int, seed: int, images_per_id: int = 2):
    """A query or gallery split with pixel_values (no images), as a transformed dataset would give."""
    import datasets

    size = num_ids * images_per_id
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randn(size, 3, 32, 16, generator=generator)
    return datasets.Dataset.from_dict(
        {
            "pixel_values": pixels.numpy(),
            "person_id": [1 + i // images_per_id for i in range(size)],
            "camera_id": [camera] * size,
        }
    ).with_format("torch")


def tiny_trainer(output_dir, callbacks, **overrides) -> LATransformerTrainer:
    """The seed-0 tiny model on `RandomReIDDataset(16)` (4 steps per epoch) with `callbacks`, under
    `tiny_training_arguments(output_dir, **overrides)`."""
    return LATransformerTrainer(
        model=tiny_training_model(),
        args=tiny_training_arguments(output_dir, **overrides),
        train_dataset=RandomReIDDataset(16),
        callbacks=callbacks,
    )


def save_rank_result(output_dir, args, **result) -> None:
    """A DDP worker's `OUT/rank{R}.pt`: the world size and `result`."""
    torch.save({"world_size": args.world_size, **result}, f"{output_dir}/rank{args.process_index}.pt")
