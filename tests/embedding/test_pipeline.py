import numpy as np
import pytest
import torch
from transformers import pipeline

import hf_lareid  # noqa: F401  registers the task
from hf_lareid import LAReIDEmbeddingPipeline


@pytest.fixture
def embedder(tiny_model_dir):
    return pipeline("lareid-embedding", model=str(tiny_model_dir))


def expected(tiny_model, tiny_image_processor, images):
    with torch.no_grad():
        return tiny_model.embed(tiny_image_processor(images, return_tensors="pt")["pixel_values"]).numpy()


def test_pipeline_loads_model_and_processor(embedder, tiny_model_dir):
    assert isinstance(embedder, LAReIDEmbeddingPipeline)
    assert type(embedder.model).__name__ == "LATransformerForReID"
    assert embedder.image_processor.size == {"height": 64, "width": 32}


def test_pipeline_equals_model_embed(embedder, tiny_model, tiny_image_processor, random_images):
    reference = expected(tiny_model, tiny_image_processor, random_images)
    single = embedder(random_images[0])
    assert isinstance(single, list) and len(single) == tiny_model.config.embedding_dim
    np.testing.assert_allclose(single, reference[0], atol=1e-5)
    batched = embedder(random_images, batch_size=2, return_tensors="np")
    np.testing.assert_allclose(np.stack(batched), reference, atol=1e-5)
    generated = list(embedder((image for image in random_images), batch_size=3, return_tensors="np"))
    np.testing.assert_allclose(np.stack(generated), reference, atol=1e-5)


def test_pipeline_reads_paths_and_flips(tmp_path, embedder, random_images):
    path = tmp_path / "person.png"
    random_images[1].save(path)
    from_path = embedder(str(path), return_tensors="np")
    from_image = embedder(random_images[1], return_tensors="np")
    np.testing.assert_allclose(from_path, from_image, atol=1e-6)
    flipped = embedder(random_images[1], flip=True, return_tensors="np")
    mirrored = embedder(random_images[1].transpose(0), flip=True, return_tensors="np")  # PIL FLIP_LEFT_RIGHT
    np.testing.assert_allclose(flipped, mirrored, atol=1e-5)
    assert np.abs(flipped - from_image).max() > 1e-4
    assert abs(np.linalg.norm(flipped) - 1) < 1e-5


def test_pipeline_converts_grayscale_and_rgba(embedder, random_images):
    rgb = random_images[2]
    for mode in ("L", "RGBA", "CMYK"):
        vector = embedder(rgb.convert(mode), return_tensors="np")
        assert vector.shape == (128,) and np.isfinite(vector).all()


def test_pipeline_bf16_option_runs_autocast(embedder, random_images):
    fp32 = np.stack(embedder(random_images, return_tensors="np"))
    bf16 = np.stack(embedder(random_images, bf16=True, return_tensors="np"))
    assert not np.array_equal(fp32, bf16) and ((fp32 * bf16).sum(axis=1) > 0.99).all()
    np.testing.assert_allclose(np.stack(embedder(random_images, bf16=False, return_tensors="np")), fp32)


@pytest.mark.parametrize("pool", [None, True, False])
def test_image_feature_extraction_task_returns_the_reid_embedding(
    tiny_model_dir, tiny_model, tiny_image_processor, random_images, pool
):
    """The standard task (what Hub widgets and generic users call) gives the same vector as `lareid-embedding`."""
    extractor = pipeline("image-feature-extraction", model=str(tiny_model_dir))
    options = {} if pool is None else {"pool": pool}
    vectors = np.asarray(extractor(random_images[:2], **options))  # (images, 1, embedding_dim)
    assert vectors.shape == (2, 1, tiny_model.config.embedding_dim)
    lareid = np.stack(pipeline("lareid-embedding", model=str(tiny_model_dir))(random_images[:2], return_tensors="np"))
    np.testing.assert_allclose(vectors[:, 0], lareid, atol=1e-6)
    np.testing.assert_allclose(vectors[:, 0], expected(tiny_model, tiny_image_processor, random_images[:2]), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors[:, 0], axis=1), 1.0, atol=1e-5)
