"""The generated camera videos and a tiny model trained a few steps to tell their people apart (an untrained tiny
model ranks the wrong person first on them), shared by the video tests of one module."""

import numpy as np
import pytest
import torch
from model_factories import tiny_config
from PIL import Image
from transformers import ViTImageProcessorPil

from hf_lareid import LATransformerForReID
from hf_lareid.data import generate_synthetic_reid
from hf_lareid.data.synthetic_video import generate_synthetic_video

NUM_PEOPLE = 4


@pytest.fixture(scope="session")
def video_set(tmp_path_factory):
    """4 people crossing 2 camera views (cam1.mp4, cam2.mp4 and MOT sequence folders cam1/, cam2/)."""
    return generate_synthetic_video(tmp_path_factory.mktemp("video-set"), num_people=NUM_PEOPLE, num_cameras=2)


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory):
    """The tiny model after 40 steps on generated crops of the same 4 people and 2 cameras (other poses), saved with
    its image processor."""
    crops_dir = generate_synthetic_reid(
        tmp_path_factory.mktemp("crops"),
        num_ids=NUM_PEOPLE + 1,
        num_cameras=2,
        images_per_camera=6,
        image_size=(64, 32),
        num_train_ids=NUM_PEOPLE,
    )
    files = sorted((crops_dir / "bounding_box_train").glob("*.jpg"))
    processor = ViTImageProcessorPil(size={"height": 64, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    pixels = processor([Image.open(f).convert("RGB") for f in files], return_tensors="pt")["pixel_values"]
    labels = torch.tensor([int(f.name[:4]) - 1 for f in files])
    torch.manual_seed(0)
    model = LATransformerForReID(tiny_config(num_labels=NUM_PEOPLE))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    generator = np.random.default_rng(0)
    for _ in range(40):
        batch = torch.as_tensor(generator.choice(len(files), 16, replace=False))
        flipped = torch.where(torch.rand(16, 1, 1, 1) < 0.5, pixels[batch].flip(-1), pixels[batch])
        loss = model(pixel_values=flipped, labels=labels[batch]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    directory = tmp_path_factory.mktemp("model") / "tiny-video-model"
    model.eval().save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory
