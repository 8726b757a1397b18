"""Shared test setup: no network, deterministic, quiet."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# The ONNX exports of runtime="auto" go to a cache of this test session (shared by its subprocesses), not ~/.cache.
os.environ["HF_LAREID_CACHE"] = tempfile.mkdtemp(prefix="hf-lareid-test-cache-")
atexit.register(shutil.rmtree, os.environ["HF_LAREID_CACHE"], ignore_errors=True)
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One intra-op thread per xdist worker (and per subprocess it starts): two workers each spinning two OpenMP
    # threads on two cores made every small op wait on descheduled threads (a 10x slower suite).
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
import torch
from model_factories import tiny_config  # noqa: F401  (also importable from conftest, as before)
from PIL import Image

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture
def tiny_model():
    from hf_lareid import LATransformerForReID

    torch.manual_seed(0)
    return LATransformerForReID(tiny_config()).eval()


@pytest.fixture
def tiny_image_processor():
    from transformers import ViTImageProcessorPil

    return ViTImageProcessorPil(size={"height": 64, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3)


@pytest.fixture
def tiny_model_dir(tmp_path, tiny_model, tiny_image_processor):
    """A saved tiny model with its image processor, as `from_pretrained` and `pipeline` expect."""
    directory = tmp_path / "tiny-model"
    tiny_model.save_pretrained(directory)
    tiny_image_processor.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def market_dir(tmp_path_factory):
    """6 train ids and 6 test ids, 2 cameras x 2 images each, plus 3 distractors, in the Market-1501 layout: 15
    gallery images, 12 queries (the command-line and fault-injection tests; a few files define their own)."""
    from cli_helpers import tiny_market

    return tiny_market(tmp_path_factory.mktemp("market"), num_ids=12, num_cameras=2, num_distractors=3)


@pytest.fixture
def random_images():
    """Five random RGB images of different sizes (the processor resizes them)."""
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (60 + 7 * i, 30 + 3 * i, 3), dtype=np.uint8)) for i in range(5)]
