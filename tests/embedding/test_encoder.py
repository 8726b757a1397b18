"""`ReIDEncoder`: encode equals extract_features, its provenance follows every setting that changes a vector, an
index refuses queries of another provenance, and switching the embedding on a loaded model is never ignored."""

import ast
import copy
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from model_factories import tiny_config
from transformers import ViTImageProcessorPil

import hf_lareid
from hf_lareid import LATransformerForReID, Provenance, ReIDEncoder, extract_features
from hf_lareid.embedding.backends import runtime_available
from hf_lareid.retrieval import EmbeddingSettingsMismatchError, FingerprintMismatchError, GalleryIndex

RUNTIMES = ["torch", *[name for name in ("onnxruntime", "openvino") if runtime_available(name)]]
ATOL = 1e-4


def fresh_model(seed: int = 0, **config) -> LATransformerForReID:
    torch.manual_seed(seed)
    return LATransformerForReID(tiny_config(**config)).eval()


def processor(**overrides) -> ViTImageProcessorPil:
    settings = {"size": {"height": 64, "width": 32}, "image_mean": [0.5] * 3, "image_std": [0.5] * 3, **overrides}
    return ViTImageProcessorPil(**settings)


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("flip", [False, True])
def test_encode_equals_extract_features_and_iter_encode(tiny_model, tiny_image_processor, random_images, runtime, flip):
    encoder = ReIDEncoder(tiny_model, tiny_image_processor, runtime=runtime, bf16=False, flip=flip, batch_size=2)
    encoded = encoder.encode(random_images)
    expected = extract_features(
        tiny_model,
        random_images,
        batch_size=2,
        flip=flip,
        bf16=False,
        image_processor=tiny_image_processor,
        progress=False,
        runtime=runtime,
    )
    np.testing.assert_array_equal(encoded.embeddings, expected.embeddings)
    assert encoded.embeddings.shape == (5, tiny_model.config.embedding_dim)
    streamed = np.concatenate([part.embeddings for part in encoder.iter_encode(random_images)])
    np.testing.assert_array_equal(streamed, encoded.embeddings)
    pixels = tiny_image_processor(random_images, return_tensors="pt")["pixel_values"]
    np.testing.assert_allclose(encoder.embed_pixels(pixels).numpy(), encoded.embeddings, atol=1e-6)


def test_encoder_from_a_model_folder_loads_its_image_processor(tiny_model_dir, tiny_model, random_images):
    encoder = ReIDEncoder(tiny_model_dir, runtime="torch", bf16=False)
    assert encoder.image_processor is not None
    assert encoder.provenance.model_fingerprint == ReIDEncoder(tiny_model, runtime="torch").provenance.model_fingerprint
    expected = ReIDEncoder(tiny_model, processor(), runtime="torch", bf16=False).encode(random_images)
    np.testing.assert_allclose(encoder.encode(random_images).embeddings, expected.embeddings, atol=1e-6)


def test_sharded_encodes_join_to_the_whole(tiny_model, tiny_image_processor, random_images):
    encoder = ReIDEncoder(tiny_model, tiny_image_processor, runtime="torch", bf16=False, batch_size=2)
    whole = encoder.encode(random_images).embeddings
    shards = [encoder.encode(random_images, shard=(rank, 2)).embeddings for rank in range(2)]
    assert [len(shard) for shard in shards] == [3, 2]
    np.testing.assert_array_equal(np.concatenate(shards), whole)


def test_provenance_changes_with_every_setting_that_changes_a_vector():
    model = fresh_model()
    base = ReIDEncoder(model, processor(), runtime="torch", bf16=False).provenance
    assert ReIDEncoder(model, processor(), runtime="torch", bf16=False).provenance == base  # deterministic
    assert ReIDEncoder(fresh_model(), processor(), runtime="torch", bf16=False).provenance == base  # same weights

    def differs(provenance: Provenance, field: str) -> None:
        assert provenance != base and provenance.key() != base.key()
        assert field in base.mismatches(provenance), (field, base.mismatches(provenance))

    differs(ReIDEncoder(model, processor(), runtime="torch", bf16=False, flip=True).provenance, "embedding")
    differs(ReIDEncoder(model, processor(image_mean=[0.4] * 3), runtime="torch", bf16=False).provenance, "embedding")
    differs(
        ReIDEncoder(model, processor(size={"height": 64, "width": 30}), runtime="torch", bf16=False).provenance,
        "embedding",
    )
    differs(ReIDEncoder(model, processor(), runtime="torch", bf16=True).provenance, "runtime")
    for runtime in RUNTIMES[1:]:
        differs(ReIDEncoder(model, processor(), runtime=runtime).provenance, "runtime")
    differs(ReIDEncoder(fresh_model(seed=1), processor(), runtime="torch", bf16=False).provenance, "model_fingerprint")

    encoder = ReIDEncoder(model, processor(), runtime="torch", bf16=False)
    with torch.no_grad():
        model.vit.layernorm.bias.add_(0.1)  # in place, as an optimizer step
    differs(encoder.provenance, "model_fingerprint")
    with torch.no_grad():
        model.vit.layernorm.bias.sub_(0.1)
    for name, value in [("embedding", "local"), ("embedding", "bottleneck"), ("lambda_global", 0.5)]:
        changed = copy.deepcopy(model)
        setattr(changed.config, name, value)
        differs(ReIDEncoder(changed, processor(), runtime="torch", bf16=False).provenance, "model_fingerprint")
    changed = copy.deepcopy(model)
    changed.config.backbone_config.layer_norm_eps = 1e-3  # read by the forward, not part of the fingerprint
    provenance = ReIDEncoder(changed, processor(), runtime="torch", bf16=False).provenance
    assert provenance.model_fingerprint == base.model_fingerprint
    differs(provenance, "embedding")


def test_bottleneck_provenance_follows_the_row_heads_it_reads():
    model = fresh_model(embedding="bottleneck")
    encoder = ReIDEncoder(model, runtime="torch", bf16=False)
    before = encoder.provenance
    with torch.no_grad():
        model.part_classifiers[0].dense.weight.add_(0.1)  # the bottleneck embedding reads it
    assert encoder.provenance.model_fingerprint != before.model_fingerprint
    after = encoder.provenance
    with torch.no_grad():
        model.part_classifiers[0].classifier.weight.add_(0.1)  # the classifier never makes an embedding
    assert encoder.provenance == after


@pytest.mark.parametrize("runtime", [*RUNTIMES, "auto"])
def test_switching_the_embedding_on_a_loaded_model_is_never_ignored(random_images, runtime):
    model = fresh_model(seed=3)
    image_processor = processor()
    encoder = ReIDEncoder(model, image_processor, runtime=runtime, bf16=False)
    pixels = image_processor(random_images, return_tensors="pt")["pixel_values"]
    for embedding in ["gelt", "local", "bottleneck", "gelt"]:
        model.config.embedding = embedding
        with torch.no_grad():
            expected = torch.nn.functional.normalize(model.embed(pixels), dim=-1).numpy()
        for got in (
            encoder.encode(random_images).embeddings,
            extract_features(
                model, random_images, image_processor=image_processor, runtime=runtime, bf16=False, progress=False
            ).embeddings,
        ):
            assert got.shape == expected.shape == (5, model.config.embedding_dim), embedding
            assert np.abs(got - expected).max() < ATOL, embedding
        assert encoder.provenance.model_config["embedding"] == embedding


def test_an_index_refuses_queries_of_another_provenance(tmp_path, random_images, caplog):
    model = fresh_model()
    built_with = ReIDEncoder(model, processor(), runtime="torch", bf16=False)
    gallery = built_with.encode(random_images)
    index = GalleryIndex(gallery.embeddings.shape[1], **built_with.provenance.index_fields())
    index.add(gallery.embeddings)
    index.save(tmp_path / "index")
    index = GalleryIndex.load(tmp_path / "index")
    assert index.provenance == built_with.provenance

    same = ReIDEncoder(model, processor(), runtime="torch", bf16=False)
    hits = index.search(same.encode(random_images[:1]).embeddings, k=1, provenance=same.provenance)
    assert hits.indices[0, 0] == 0

    flipped = ReIDEncoder(model, processor(), runtime="torch", bf16=False, flip=True)
    with pytest.raises(EmbeddingSettingsMismatchError, match="flip: False \\(index\\) vs True \\(query\\)"):
        index.search(gallery.embeddings[:1], k=1, provenance=flipped.provenance)
    with pytest.raises(EmbeddingSettingsMismatchError, match="processor_image_mean"):
        index.check_provenance(ReIDEncoder(model, processor(image_mean=[0.4] * 3), runtime="torch").provenance)
    switched = copy.deepcopy(model)
    switched.config.backbone_config.layer_norm_eps = 1e-3
    with pytest.raises(EmbeddingSettingsMismatchError, match="backbone_layer_norm_eps"):
        index.check_provenance(ReIDEncoder(switched, processor(), runtime="torch").provenance)
    with pytest.raises(FingerprintMismatchError):
        index.check_provenance(ReIDEncoder(fresh_model(seed=1), processor(), runtime="torch").provenance)
    with caplog.at_level(logging.WARNING, logger="hf_lareid.retrieval"):
        index.check_provenance(ReIDEncoder(model, processor(), runtime="torch", bf16=True).provenance)
    assert "another runtime" in caplog.text and "bf16: False (index) vs True (query)" in caplog.text


def test_an_index_older_than_the_model_config_still_checks_the_rest():
    encoder = ReIDEncoder(fresh_model(), processor(), runtime="torch", bf16=False)
    fields = encoder.provenance.index_fields()
    older = {
        **fields,
        "embedding_settings": {k: v for k, v in fields["embedding_settings"].items() if k != "model_config"},
    }
    index = GalleryIndex(encoder.model.config.embedding_dim, **older)
    index.check_provenance(encoder.provenance)  # no model config recorded: not checked
    with pytest.raises(EmbeddingSettingsMismatchError, match="flip"):
        index.check_provenance(ReIDEncoder(encoder.model, processor(), runtime="torch", flip=True).provenance)


def test_provenance_mismatch_rules():
    recorded = Provenance("fp", {"embedding": "gelt"}, {"flip": False}, {"runtime": "torch", "bf16": False})
    assert recorded.mismatches(recorded) == {}
    assert recorded.mismatches(Provenance()) == {}  # nothing recorded by the query: nothing to compare
    assert set(recorded.mismatches(Provenance("other"))) == {"model_fingerprint"}
    assert recorded.mismatches(Provenance("fp", {"embedding": "local"}))["embedding"] == (
        "embedding: 'gelt' (index) vs 'local' (query)"
    )
    # A processor setting recorded on one side only is a difference; a runtime key only on one side is not.
    assert (
        "processor_size"
        in recorded.mismatches(Provenance("fp", None, {"flip": False, "processor_size": 1}))["embedding"]
    )
    assert recorded.mismatches(Provenance("fp", None, None, {"runtime": "torch", "device": "cpu"})) == {}
    assert Provenance.from_index_fields(**recorded.index_fields()) == recorded
    assert hash(Provenance.from_index_fields(**recorded.index_fields())) == hash(recorded)


def test_provenance_imports_no_model_and_no_torch():
    source = Path(hf_lareid.__file__).parent / "embedding" / "provenance.py"
    imported = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
    assert not any(name.split(".")[0] in ("torch", "transformers") or name.startswith(".") for name in imported)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_encoding_installs_no_global_torch_hooks(tiny_model, tiny_image_processor, random_images, runtime):
    from torch.nn.modules import module

    hooks = (
        module._global_module_registration_hooks,
        module._global_parameter_registration_hooks,
        module._global_buffer_registration_hooks,
    )
    before = [dict(hook) for hook in hooks]
    encoder = ReIDEncoder(tiny_model, tiny_image_processor, runtime=runtime, bf16=False)
    encoder.encode(random_images)
    assert encoder.provenance.model_fingerprint
    assert [dict(hook) for hook in hooks] == before
