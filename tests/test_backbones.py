"""Backbones beyond ViT: DeiT (CLS + distillation token), DINOv2 and DINOv2 with registers, on tiny random configs.

Each backbone: token layout and row pooling, embed, save/load, from_backbone from a saved backbone folder (same grid
and a tall crop, resampled as the backbone itself resamples), the default crop, attention rollout, ONNX export,
fingerprint, blockwise unfreezing and the two pipeline tasks.
"""

import hashlib
import json

import numpy as np
import pytest
import torch
from model_factories import TINY_BACKBONE_LAYOUTS, tiny_backbone_config
from transformers import (
    DeiTForImageClassificationWithTeacher,
    DeiTModel,
    Dinov2Model,
    Dinov2WithRegistersModel,
    ViTImageProcessorPil,
    ViTModel,
    pipeline,
)

from hf_lareid import LATransformerConfig, LATransformerForReID, model_fingerprint
from hf_lareid.configuration_lareid import reid_crop_size

# model_type -> (bare model class, special tokens before the patches); the tiny layouts are in model_factories
BACKBONES = {
    "vit": (ViTModel, 1),
    "deit": (DeiTModel, 2),
    "dinov2": (Dinov2Model, 1),
    "dinov2_with_registers": (Dinov2WithRegistersModel, 4),
}
MODEL_TYPES = list(BACKBONES)


@torch.no_grad()
def randomise_special_tokens(backbone):
    """DeiT initialises its CLS/distillation tokens and positions to zero: random ones make the tokens distinguishable."""
    embeddings = backbone.embeddings
    for name in ("cls_token", "distillation_token", "register_tokens", "position_embeddings"):
        if getattr(embeddings, name, None) is not None:
            getattr(embeddings, name).normal_(std=0.5)
    return backbone


def tiny_model_of_type(model_type, seed=0, **config_kwargs):
    torch.manual_seed(seed)
    config = LATransformerConfig(
        backbone_config=tiny_backbone_config(model_type), num_labels=5, bottleneck_dim=16, **config_kwargs
    )
    model = LATransformerForReID(config).eval()
    randomise_special_tokens(model.vit)
    return model


def pixels(model, batch_size=2, seed=0):
    return torch.randn(batch_size, 3, *model.config.image_size, generator=torch.Generator().manual_seed(seed))


def save_backbone(path, model_type, image_size, model_class=None, seed=0):
    """A bare backbone (or `model_class`, e.g. an image classifier) saved as the Hub publishes them."""
    torch.manual_seed(seed)
    bare_class, _ = BACKBONES[model_type]
    model_class = model_class or bare_class
    pooling = {"add_pooling_layer": False} if model_class in (ViTModel, DeiTModel) else {}
    backbone = model_class(tiny_backbone_config(model_type, image_size=image_size), **pooling).eval()
    randomise_special_tokens(getattr(backbone, "deit", backbone))
    backbone.save_pretrained(path)
    return backbone


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_token_layout_shapes_and_embed(model_type):
    model = tiny_model_of_type(model_type)
    config, num_special = model.config, BACKBONES[model_type][1]
    rows, cols = config.grid_size
    assert config.backbone_type == model_type and config.num_special_tokens == num_special
    x = pixels(model)
    with torch.no_grad():
        out = model(x, labels=torch.tensor([1, 4]), output_hidden_states=True, output_attentions=True)
    num_tokens = num_special + rows * cols
    assert out.hidden_states[-1].shape == (2, num_tokens, 32)
    assert out.attentions[-1].shape == (2, 2, num_tokens, num_tokens)
    assert out.logits.shape == (2, rows, 5) and out.part_features.shape == (2, rows, 32)
    assert out.embeddings.shape == (2, rows * 32) and out.loss.shape == ()
    torch.testing.assert_close(out.embeddings.norm(dim=-1), torch.ones(2))
    with torch.no_grad():
        torch.testing.assert_close(model.embed(x), out.embeddings, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    ("model_type", "global_token", "span"),
    [
        ("vit", "cls", (0, 1)),
        ("deit", "cls", (0, 1)),
        ("deit", "distillation", (1, 2)),
        ("deit", "mean", (0, 2)),
        ("dinov2", "cls", (0, 1)),
        ("dinov2_with_registers", "cls", (0, 1)),
    ],
)
def test_row_pooling_skips_the_special_tokens_and_blends_the_chosen_global_token(model_type, global_token, span):
    model = tiny_model_of_type(model_type, global_token=global_token, lambda_global=0.8)
    rows, cols = model.config.grid_size
    x = pixels(model)
    with torch.no_grad():
        tokens = model.vit(x).last_hidden_state
        out = model(x)
    num_special = BACKBONES[model_type][1]
    global_token_vector = tokens[:, span[0] : span[1]].mean(dim=1, keepdim=True)
    row_means = tokens[:, num_special:].reshape(2, rows, cols, 32).mean(dim=2)
    torch.testing.assert_close(out.part_features, (row_means + 0.8 * global_token_vector) / 1.8, atol=1e-6, rtol=1e-5)


def test_deit_global_token_choices_give_different_embeddings_and_fingerprints():
    models = {token: tiny_model_of_type("deit", global_token=token) for token in ("cls", "distillation", "mean")}
    x = pixels(models["cls"])
    with torch.no_grad():
        embeddings = {token: model.embed(x) for token, model in models.items()}
    assert not torch.allclose(embeddings["cls"], embeddings["distillation"], atol=1e-3)
    assert not torch.allclose(embeddings["cls"], embeddings["mean"], atol=1e-3)
    assert len({model_fingerprint(model) for model in models.values()}) == 3


def test_vit_fingerprints_keep_their_old_value():
    """Indexes built before DeiT/DINOv2 came store a fingerprint made of these six fields and the weights."""
    model = tiny_model_of_type("vit")
    config, digest = model.config, hashlib.sha256()
    fields = ("embedding", "lambda_global", "image_size", "patch_size", "hidden_size", "num_parts")
    digest.update(json.dumps({name: getattr(config, name) for name in fields}, sort_keys=True, default=list).encode())
    for name, tensor in sorted(model.state_dict().items()):
        if name.startswith("vit."):
            digest.update(name.encode())
            digest.update(tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    assert model_fingerprint(model) == digest.hexdigest()
    assert model_fingerprint(tiny_model_of_type("dinov2")) != model_fingerprint(
        tiny_model_of_type("dinov2_with_registers")
    )


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_save_and_load_round_trip(tmp_path, model_type):
    model = tiny_model_of_type(model_type, global_token="mean" if model_type == "deit" else "cls")
    model.save_pretrained(tmp_path)
    on_disk = json.loads((tmp_path / "config.json").read_text())
    assert on_disk["backbone_config"]["model_type"] == model_type
    reloaded = LATransformerForReID.from_pretrained(tmp_path).eval()
    assert reloaded.config.backbone_type == model_type and reloaded.config.global_token == model.config.global_token
    assert type(reloaded.vit.embeddings) is type(model.vit.embeddings)
    x = pixels(model)
    with torch.no_grad():
        torch.testing.assert_close(reloaded.embed(x), model.embed(x), atol=1e-6, rtol=1e-5)
    assert model_fingerprint(reloaded) == model_fingerprint(model)


def _square(model_type):
    side = TINY_BACKBONE_LAYOUTS[model_type]["image_size"][0]
    return [side, side]


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_from_backbone_same_grid_is_the_backbone(tmp_path, model_type):
    backbone = save_backbone(tmp_path, model_type, _square(model_type))
    model = LATransformerForReID.from_backbone(str(tmp_path), num_labels=3, image_size=_square(model_type)).eval()
    assert model.config.backbone_type == model_type
    for name, tensor in backbone.state_dict().items():
        assert torch.equal(model.vit.state_dict()[name], tensor), name
    x = pixels(model)
    with torch.no_grad():
        torch.testing.assert_close(model.vit(x).last_hidden_state, backbone(x).last_hidden_state)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_from_backbone_tall_crop_resamples_positions_as_the_backbone_does(tmp_path, model_type):
    """Positions resampled once (bicubic, DINOv2 with registers antialiased) equal the backbone's own per-forward ones."""
    backbone = save_backbone(tmp_path, model_type, _square(model_type))
    tall = TINY_BACKBONE_LAYOUTS[model_type]["image_size"]
    model = LATransformerForReID.from_backbone(str(tmp_path), num_labels=3, image_size=tall).eval()
    assert list(model.config.image_size) == tall
    x = pixels(model)
    # ViT and DeiT resample only when asked; DINOv2 resamples on every forward whose input is not square.
    asked = {"interpolate_pos_encoding": True} if model_type in ("vit", "deit") else {}
    with torch.no_grad():
        expected = backbone(x, **asked).last_hidden_state
        torch.testing.assert_close(model.vit(x).last_hidden_state, expected, atol=1e-5, rtol=1e-4)
        assert model(x).logits.shape == (2, model.config.num_parts, 3)


def test_from_backbone_reads_a_deit_classifier_with_teacher(tmp_path):
    """facebook/deit-*-distilled-* are published as DeiTForImageClassificationWithTeacher."""
    classifier = save_backbone(tmp_path, "deit", [32, 32], model_class=DeiTForImageClassificationWithTeacher)
    model = LATransformerForReID.from_backbone(str(tmp_path), num_labels=3, global_token="mean")
    for name, tensor in classifier.deit.state_dict().items():
        if not name.startswith("pooler."):
            assert torch.equal(model.vit.state_dict()[name], tensor), name


@pytest.mark.parametrize("model_type", ["dinov2", "dinov2_with_registers"])
def test_dinov2_default_crop_is_the_largest_reid_crop_patch_14_divides(tmp_path, model_type):
    torch.manual_seed(0)
    BACKBONES[model_type][0](tiny_backbone_config(model_type, image_size=56, patch_size=14)).save_pretrained(tmp_path)
    model = LATransformerForReID.from_backbone(str(tmp_path), num_labels=3)
    assert model.config.image_size == (252, 126) == reid_crop_size(14) and model.config.grid_size == (18, 9)
    with torch.no_grad():
        assert model.embed(pixels(model, batch_size=1)).shape == (1, 18 * 32)
    with pytest.raises(ValueError, match=r"not divisible by patch_size \(14, 14\).*\(252, 126\)"):
        LATransformerForReID.from_backbone(str(tmp_path), num_labels=3, image_size=(256, 128))


def test_reid_crop_size():
    assert reid_crop_size(16) == (256, 128) and reid_crop_size(14) == (252, 126) and reid_crop_size(8) == (256, 128)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_attention_rollout_on_the_patch_grid(model_type):
    from hf_lareid.analysis.attention_rollout import attention_rollout

    model = tiny_model_of_type(model_type)
    rollout = attention_rollout(model, pixels(model, batch_size=3))
    assert rollout.shape == (3, *model.config.grid_size)
    assert float(rollout.min()) == 0.0 and float(rollout.max()) == pytest.approx(1.0)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_blockwise_unfreezing_finds_the_blocks(model_type):
    from hf_lareid.training.callbacks import BlockwiseUnfreezeCallback

    model = tiny_model_of_type(model_type)
    stage = BlockwiseUnfreezeCallback(t=1).apply(0, model)
    blocks = model.vit.layers if hasattr(model.vit, "layers") else model.vit.encoder.layer
    assert stage.num_trainable_blocks == 1
    assert [all(p.requires_grad for p in block.parameters()) for block in blocks] == [False, True]
    assert not any(p.requires_grad for p in model.vit.embeddings.parameters())


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@pytest.mark.parametrize("opset", [18, 17])  # 18: the torch.export-based exporter; 17: TorchScript (tracing)
def test_onnx_export_equals_pytorch(tmp_path, model_type, opset):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from hf_lareid.embedding.onnx_export import export_onnx

    model = tiny_model_of_type(model_type)
    report = export_onnx(model, tmp_path / "model.onnx", opset=opset, check_batch_sizes=(1, 3))
    assert report["exporter"] == ("dynamo" if opset == 18 else "torchscript")
    assert report["embedding_dim"] == model.config.embedding_dim and report["max_abs_diff"] < 1e-5


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_both_pipeline_tasks_return_the_embedding(tmp_path, model_type, random_images):
    model = tiny_model_of_type(model_type)
    height, width = model.config.image_size
    processor = ViTImageProcessorPil(size={"height": height, "width": width})
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    lareid = pipeline("lareid-embedding", model=str(tmp_path))(random_images[0], return_tensors="np")
    extractor = pipeline("image-feature-extraction", model=str(tmp_path))
    with torch.no_grad():
        embedded = model.embed(processor(random_images[0], return_tensors="pt")["pixel_values"])[0].numpy()
    for options in ({}, {"pool": True}):
        np.testing.assert_allclose(np.asarray(extractor(random_images[0], **options))[0], lareid, atol=1e-6)
    np.testing.assert_allclose(lareid, embedded, atol=1e-5)
