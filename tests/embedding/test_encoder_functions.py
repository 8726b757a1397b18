import numpy as np
import pytest
import torch
from datasets import Dataset, Features, Value
from datasets import Image as ImageFeature

from hf_lareid import FeatureSet, ReIDEncoder, extract_features, gather_features, model_fingerprint
from hf_lareid.embedding import iter_features
from hf_lareid.embedding.backends import embed_pixels
from hf_lareid.embedding.precision import bf16_pays, resolve_bf16
from hf_lareid.embedding.sharding import resolve_shard, shard_bounds, shard_data


def reference_embeddings(model, image_processor, images):
    with torch.no_grad():
        return model.embed(image_processor(images, return_tensors="pt")["pixel_values"]).numpy()


def test_extract_features_from_images_equals_model_embed(tiny_model, tiny_image_processor, random_images):
    features = extract_features(
        tiny_model, random_images, batch_size=2, image_processor=tiny_image_processor, bf16=False
    )
    assert features.embeddings.shape == (5, tiny_model.config.embedding_dim)
    assert features.embeddings.dtype == np.float32
    np.testing.assert_allclose(
        features.embeddings, reference_embeddings(tiny_model, tiny_image_processor, random_images), atol=1e-6
    )
    np.testing.assert_array_equal(features.person_ids, -1)
    np.testing.assert_allclose(np.linalg.norm(features.embeddings, axis=1), 1.0, atol=1e-5)


def test_extract_features_reads_paths_and_dataset_columns(tmp_path, tiny_model, tiny_image_processor, random_images):
    paths = []
    for i, image in enumerate(random_images):
        path = tmp_path / f"{i}.png"
        image.save(path)
        paths.append(str(path))
    dataset = Dataset.from_dict(
        {"image": paths, "person_id": [3, 3, 5, 5, 7], "camera_id": [1, 2, 1, 2, 1], "path": paths},
        features=Features(
            {"image": ImageFeature(), "person_id": Value("int64"), "camera_id": Value("int64"), "path": Value("string")}
        ),
    )
    from_dataset = extract_features(tiny_model, dataset, batch_size=3, image_processor=tiny_image_processor, bf16=False)
    from_paths = extract_features(
        tiny_model, iter(paths), batch_size=3, image_processor=tiny_image_processor, bf16=False
    )
    np.testing.assert_allclose(from_dataset.embeddings, from_paths.embeddings, atol=1e-6)
    assert from_dataset.person_ids.tolist() == [3, 3, 5, 5, 7]
    assert from_dataset.camera_ids.tolist() == [1, 2, 1, 2, 1]
    assert from_dataset.paths == paths == from_paths.paths


def test_flip_averages_image_and_mirror(tiny_model):
    pixels = torch.randn(3, 3, 64, 32)
    flipped = embed_pixels(tiny_model, pixels, flip=True)
    with torch.no_grad():
        expected = torch.nn.functional.normalize(tiny_model.embed(pixels) + tiny_model.embed(pixels.flip(-1)), dim=-1)
    torch.testing.assert_close(flipped, expected)
    # A mirror-symmetric input has the same flip and plain embedding.
    symmetric = torch.cat([pixels[..., :16], pixels[..., :16].flip(-1)], dim=-1)
    torch.testing.assert_close(
        embed_pixels(tiny_model, symmetric, flip=True), embed_pixels(tiny_model, symmetric), atol=1e-5, rtol=0
    )


def test_shards_are_contiguous_and_join_in_the_original_order(tiny_model, tiny_image_processor, random_images):
    options = dict(batch_size=2, image_processor=tiny_image_processor, bf16=False, progress=False)
    whole = extract_features(tiny_model, random_images, **options)
    shards = [extract_features(tiny_model, random_images, shard=(rank, 3), **options) for rank in range(3)]
    assert [len(s) for s in shards] == [2, 2, 1]  # 5 images: contiguous, balanced
    joined = FeatureSet.concatenate(shards, embedding_dim=tiny_model.config.embedding_dim)
    np.testing.assert_allclose(joined.embeddings, whole.embeddings, atol=1e-6)
    assert joined.paths == whole.paths
    encoder = ReIDEncoder(tiny_model, tiny_image_processor, bf16=False, batch_size=2)
    streamed = list(encoder.iter_encode(random_images, shard=(2, 3)))
    np.testing.assert_allclose(np.concatenate([s.embeddings for s in streamed]), shards[2].embeddings, atol=1e-6)
    # Without a process group, "auto" is the whole input and gathering returns the part itself.
    alone = gather_features(extract_features(tiny_model, random_images, shard="auto", **options))
    np.testing.assert_allclose(alone.embeddings, whole.embeddings, atol=1e-6)


def test_iter_features_is_a_deprecated_alias_of_iter_encode(tiny_model, tiny_image_processor, random_images):
    encoder = ReIDEncoder(tiny_model, tiny_image_processor, bf16=False, batch_size=2)
    expected = list(encoder.iter_encode(random_images, shard=(0, 2)))
    with pytest.warns(FutureWarning, match="iter_encode") as record:
        streamed = list(
            iter_features(
                tiny_model, random_images, image_processor=tiny_image_processor, bf16=False, batch_size=2, shard=(0, 2)
            )
        )
    message = str(record[0].message)
    assert "ReIDEncoder(model, ...).iter_encode(data)" in message and "removed in hf-lareid 0.2" in message
    assert [len(part) for part in streamed] == [len(part) for part in expected] == [2, 1]
    np.testing.assert_allclose(
        np.concatenate([part.embeddings for part in streamed]),
        np.concatenate([part.embeddings for part in expected]),
        atol=1e-6,
    )


def test_shard_bounds_and_bad_shards():
    assert [shard_bounds(10, r, 4) for r in range(4)] == [(0, 3), (3, 6), (6, 8), (8, 10)]
    assert [shard_bounds(1, r, 2) for r in range(2)] == [(0, 1), (1, 1)]
    for bad in [(2, 2), (0, 0), "all", 3]:
        with pytest.raises(ValueError, match="shard"):
            resolve_shard(bad)
    with pytest.raises(ValueError, match="generator"):
        shard_data((x for x in range(3)), (0, 2))


def test_empty_input_gives_empty_features(tiny_model, tiny_image_processor):
    features = extract_features(tiny_model, [], image_processor=tiny_image_processor)
    assert features.embeddings.shape == (0, tiny_model.config.embedding_dim)


def test_bad_inputs_are_named(tmp_path, tiny_model, tiny_image_processor):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="broken.jpg"):
        extract_features(tiny_model, [str(broken)], image_processor=tiny_image_processor)
    with pytest.raises(ValueError, match="image processor"):
        extract_features(tiny_model, [str(broken)])
    with pytest.raises(ValueError, match="batch_size"):
        extract_features(tiny_model, [str(broken)], batch_size=0, image_processor=tiny_image_processor)


def test_bf16_resolution_follows_the_cpu():
    assert resolve_bf16(False) is False
    assert resolve_bf16("auto") is bf16_pays("cpu") is bool(torch.cpu._is_avx512_bf16_supported())


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_embeddings_close_to_fp32_and_weights_stay_fp32(device, tiny_model, tiny_image_processor, random_images):
    """bf16 autocast runs on every CPU (only slowly without AVX512-BF16, so "auto" avoids it there)."""
    model = tiny_model.to(device)
    options = {"image_processor": tiny_image_processor, "progress": False}
    fp32 = extract_features(model, random_images, bf16=False, **options).embeddings
    bf16 = extract_features(model, random_images, bf16=True, **options).embeddings
    assert bf16.dtype == np.float32 and np.allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)
    assert ((fp32 * bf16).sum(axis=1) > 0.99).all()
    assert not np.array_equal(fp32, bf16)  # autocast did run in bf16
    assert {parameter.dtype for parameter in model.parameters()} == {torch.float32}


def test_fingerprint_tracks_backbone_weights_and_embedding_config(tiny_model):
    before = model_fingerprint(tiny_model)
    assert before == model_fingerprint(tiny_model)
    with torch.no_grad():
        tiny_model.part_classifiers[0].classifier.weight.add_(1.0)  # heads do not shape the embedding
    assert model_fingerprint(tiny_model) == before
    tiny_model.config.embedding = "local"
    assert model_fingerprint(tiny_model) != before
    tiny_model.config.embedding = "gelt"
    with torch.no_grad():
        tiny_model.vit.layernorm.weight.add_(1e-3)
    assert model_fingerprint(tiny_model) != before


def test_launcher_variables_that_are_not_numbers_are_named(monkeypatch):
    from hf_lareid.embedding.sharding import check_launch
    from hf_lareid.utils.errors import LAReIDError

    monkeypatch.setenv("RANK", "first")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(LAReIDError, match=r"RANK='first' is not a whole number: unset it"):
        resolve_shard("auto")
    monkeypatch.setenv("RANK", "1")
    assert resolve_shard("auto") == (1, 2)
    with pytest.raises(LAReIDError, match=r"WORLD_SIZE='two' is not a whole number"):
        check_launch({"WORLD_SIZE": "two"})
    with pytest.raises(LAReIDError, match=r"ACCELERATE_NUM_PROCESSES='2x' is not a whole number"):
        check_launch({"ACCELERATE_NUM_PROCESSES": "2x", "WORLD_SIZE": "2"})
