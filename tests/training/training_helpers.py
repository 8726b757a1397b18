"""Tiny models and random data shared by the training tests (also imported by the DDP worker script)."""

from __future__ import annotations

import torch

from hf_lareid import LATransformerConfig, LATransformerForReID

NUM_LABELS = 6
NUM_BLOCKS = 4


def tiny_config(**overrides) -> LATransformerConfig:
    """4 blocks, width 32, 32x16 inputs, patch 8: 4 row parts."""
    fields = dict(
        backbone_config={
            "model_type": "vit", "image_size": [32, 16], "patch_size": 8, "hidden_size": 32,
            "num_hidden_layers": NUM_BLOCKS, "num_attention_heads": 2, "intermediate_size": 64,
        },
        num_labels=NUM_LABELS,
        bottleneck_dim=16,
        head_dropout=0.0,
    )
    fields.update(overrides)
    return LATransformerConfig(**fields)


def tiny_model(seed: int = 0, **overrides) -> LATransformerForReID:
    torch.manual_seed(seed)
    return LATransformerForReID(tiny_config(**overrides))


class RandomReIDDataset(torch.utils.data.Dataset):
    """`size` examples `{"pixel_values": (3, 32, 16), "label": int}`, fixed by `seed`; labels cycle over NUM_LABELS."""

    def __init__(self, size: int = 16, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.pixel_values = torch.randn(size, 3, 32, 16, generator=generator)
        self.labels = [i % NUM_LABELS for i in range(size)]

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
        {"pixel_values": pixels.numpy(), "person_id": [1 + i // images_per_id for i in range(size)],
         "camera_id": [camera] * size}
    ).with_format("torch")  # fmt: skip
