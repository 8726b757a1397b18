"""LATransformerForReID: shapes, the maths of eq. 6-9, embeddings, save/load, from_backbone, checkpointing."""

import contextlib
import copy

import pytest
import torch
import torch.nn.functional as F
from model_factories import tiny_backbone_config
from transformers import AutoModel, SwinConfig, ViTConfig, ViTForImageClassification, ViTModel

from hf_lareid import LATransformerConfig, LATransformerForReID, LATransformerOutput


class LATransformerModelTester:
    """Tiny non-square ViT: (32, 16) images, patch 4 -> an 8x4 grid, 8 row parts, 32-wide tokens."""

    def __init__(
        self,
        batch_size=3,
        image_size=(32, 16),
        patch_size=4,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        num_labels=5,
        **config_overrides,
    ):
        self.batch_size = batch_size
        self.image_size = image_size
        self.patch_size = patch_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.num_labels = num_labels
        self.config_overrides = config_overrides
        self.grid = (image_size[0] // patch_size, image_size[1] // patch_size)
        self.num_parts = self.grid[0]
        self.seq_length = 1 + self.grid[0] * self.grid[1]

    def backbone_config(self) -> ViTConfig:
        return tiny_backbone_config(
            image_size=list(self.image_size),
            patch_size=self.patch_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
        )

    def get_config(self) -> LATransformerConfig:
        return LATransformerConfig(
            backbone_config=self.backbone_config(),
            num_labels=self.num_labels,
            bottleneck_dim=16,
            **self.config_overrides,
        )

    def prepare_inputs(self, seed=0):
        generator = torch.Generator().manual_seed(seed)
        pixel_values = torch.randn(self.batch_size, 3, *self.image_size, generator=generator)
        labels = torch.randint(0, self.num_labels, (self.batch_size,), generator=generator)
        return pixel_values, labels

    def get_model(self, seed=0) -> LATransformerForReID:
        torch.manual_seed(seed)
        return LATransformerForReID(self.get_config()).eval()


@pytest.fixture
def tester():
    return LATransformerModelTester()


@pytest.fixture
def model(tester):
    return tester.get_model()


def final_tokens(model, pixel_values):
    """The final LayerNorm output F = LN(z_B) of eq. 5: (batch, 1 + patches, hidden)."""
    return model.vit(pixel_values).last_hidden_state


def test_output_shapes(tester, model):
    pixel_values, labels = tester.prepare_inputs()
    with torch.no_grad():
        out = model(pixel_values, labels=labels)
    assert isinstance(out, LATransformerOutput)
    assert out.loss.shape == ()
    assert out.logits.shape == (tester.batch_size, tester.num_parts, tester.num_labels)
    assert out.embeddings.shape == (tester.batch_size, tester.num_parts * tester.hidden_size)
    assert out.part_features.shape == (tester.batch_size, tester.num_parts, tester.hidden_size)
    assert out.hidden_states is None and out.attentions is None
    assert len(model.part_classifiers) == tester.num_parts == model.config.num_parts

    assert out.pooler_output is out.embeddings
    as_tuple = model(pixel_values, labels=labels, return_dict=False)
    assert isinstance(as_tuple, tuple)
    # loss, then the embedding: without labels the first entry is the embedding (image-feature-extraction reads it).
    torch.testing.assert_close(as_tuple[0], out.loss)
    torch.testing.assert_close(as_tuple[1], out.embeddings)
    torch.testing.assert_close(as_tuple[2], out.logits)
    with torch.no_grad():
        without_labels = model(pixel_values)
    assert without_labels.loss is None
    torch.testing.assert_close(without_labels[0], model.embed(pixel_values))


def test_wrong_image_size_is_a_clear_error(model):
    with pytest.raises(ValueError, match=r"expected pixel_values of shape \(batch, 3, 32, 16\)"):
        model(torch.randn(1, 3, 16, 32))


def test_gelt_matches_eq6_by_hand(tester, model):
    pixel_values, _ = tester.prepare_inputs()
    lam = model.config.lambda_global
    rows, cols = tester.grid
    with torch.no_grad():
        out = model(pixel_values)
        tokens = final_tokens(model, pixel_values)
    global_token, patches = tokens[:, 0], tokens[:, 1:]
    expected = torch.zeros_like(out.part_features)
    for i in range(rows):
        for j in range(i * cols, (i + 1) * cols):  # eq. 6: the patches of row i in raster order
            expected[:, i] += (patches[:, j] + lam * global_token) / (1 + lam)
        expected[:, i] /= cols
    torch.testing.assert_close(out.part_features, expected, atol=1e-6, rtol=1e-5)

    concatenated = expected.reshape(tester.batch_size, -1)
    torch.testing.assert_close(
        out.embeddings, concatenated / concatenated.norm(dim=1, keepdim=True), atol=1e-6, rtol=1e-5
    )
    torch.testing.assert_close(out.embeddings.norm(dim=1), torch.ones(tester.batch_size))


def test_local_embedding_math_and_switch_on_loaded_model(tester, model, tmp_path):
    pixel_values, _ = tester.prepare_inputs()
    model.save_pretrained(tmp_path)
    loaded = LATransformerForReID.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        gelt_embeddings = loaded(pixel_values).embeddings
        loaded.config.embedding = "local"
        local_embeddings = loaded(pixel_values).embeddings
        tokens = final_tokens(loaded, pixel_values)
    assert not torch.allclose(gelt_embeddings, local_embeddings, atol=1e-3)

    rows, cols = tester.grid
    row_means = tokens[:, 1:].reshape(tester.batch_size, rows, cols, -1).mean(dim=2)
    expected = torch.cat(
        [row_means[:, i] / (row_means[:, i].norm(dim=1, keepdim=True) * rows**0.5) for i in range(rows)], dim=1
    )
    torch.testing.assert_close(local_embeddings, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(local_embeddings.norm(dim=1), torch.ones(tester.batch_size))
    with torch.no_grad():
        torch.testing.assert_close(loaded.embed(pixel_values), local_embeddings)


def test_bottleneck_embedding_is_the_row_heads_batch_normalised_features(tester, model):
    pixel_values, labels = tester.prepare_inputs()
    model.config.embedding = "bottleneck"
    assert model.config.embedding_dim == tester.num_parts * 16  # bottleneck_dim 16
    with torch.no_grad():
        out = model(pixel_values, labels=labels)
        gelt = out.part_features
        rows = [head.norm(head.dense(gelt[:, i])) for i, head in enumerate(model.part_classifiers)]
        embedded = model.embed(pixel_values)
    expected = torch.cat([row / (row.norm(dim=1, keepdim=True) * tester.num_parts**0.5) for row in rows], dim=1)
    assert out.embeddings.shape == (tester.batch_size, model.config.embedding_dim)
    torch.testing.assert_close(out.embeddings, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(embedded, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out.embeddings.norm(dim=1), torch.ones(tester.batch_size))
    # the classifiers read the same bottleneck features: the logits do not depend on the embedding choice
    model.config.embedding = "gelt"
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values).logits, out.logits)


def test_loss_is_the_sum_over_rows_of_per_row_cross_entropy(tester, model):
    pixel_values, labels = tester.prepare_inputs()
    with torch.no_grad():
        out = model(pixel_values, labels=labels)
    manual = sum(F.cross_entropy(out.logits[:, i], labels) for i in range(tester.num_parts))
    torch.testing.assert_close(out.loss, manual)


def test_predict_is_argmax_of_summed_softmax(tester, model):
    pixel_values, _ = tester.prepare_inputs()
    predictions, scores = model.predict(pixel_values)
    with torch.no_grad():
        logits = model(pixel_values).logits
    manual_scores = sum(logits[:, i].softmax(dim=-1) for i in range(tester.num_parts))
    torch.testing.assert_close(scores, manual_scores)
    assert predictions.tolist() == manual_scores.argmax(dim=-1).tolist()
    assert scores.shape == (tester.batch_size, tester.num_labels)


def test_embed_equals_forward_embeddings(tester, model):
    pixel_values, _ = tester.prepare_inputs()
    with torch.no_grad():
        torch.testing.assert_close(model.embed(pixel_values), model(pixel_values).embeddings)


def test_attentions_with_sdpa_default(tester, model):
    assert model.vit.config._attn_implementation == "sdpa"
    pixel_values, _ = tester.prepare_inputs()
    with torch.no_grad():
        plain = model(pixel_values)
        out = model(pixel_values, output_attentions=True)
    assert len(out.attentions) == tester.num_hidden_layers
    for attention in out.attentions:
        assert attention.shape == (tester.batch_size, tester.num_attention_heads, tester.seq_length, tester.seq_length)
        torch.testing.assert_close(attention.sum(dim=-1), torch.ones(attention.shape[:-1]))
    torch.testing.assert_close(out.logits, plain.logits, atol=1e-5, rtol=1e-5)
    assert model.vit.config._attn_implementation == "sdpa"  # back to SDPA after the call


def test_hidden_states(tester, model):
    pixel_values, _ = tester.prepare_inputs()
    with torch.no_grad():
        out = model(pixel_values, output_hidden_states=True)
    assert len(out.hidden_states) == tester.num_hidden_layers + 1
    for hidden in out.hidden_states:
        assert hidden.shape == (tester.batch_size, tester.seq_length, tester.hidden_size)


def test_save_load_auto_model_and_safetensors(tester, model, tmp_path):
    pixel_values, _ = tester.prepare_inputs()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert not (tmp_path / "pytorch_model.bin").exists()
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(reloaded, LATransformerForReID)
    with torch.no_grad():
        before, after = model(pixel_values), reloaded(pixel_values)
    torch.testing.assert_close(after.logits, before.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(after.embeddings, before.embeddings, atol=1e-5, rtol=1e-5)


def test_new_label_set_swaps_heads_and_keeps_backbone(model, tmp_path):
    model.save_pretrained(tmp_path)
    swapped = LATransformerForReID.from_pretrained(tmp_path, num_labels=11, ignore_mismatched_sizes=True)
    assert swapped.config.num_labels == 11
    for head in swapped.part_classifiers:
        assert head.classifier.weight.shape == (11, 16)
    for name, tensor in model.vit.state_dict().items():
        torch.testing.assert_close(swapped.vit.state_dict()[name], tensor, atol=0, rtol=0)
    torch.testing.assert_close(swapped.part_classifiers[0].dense.weight, model.part_classifiers[0].dense.weight)


def save_tiny_vit(path, image_size, cls=ViTModel, seed=0):
    torch.manual_seed(seed)
    backbone = cls(
        tiny_backbone_config(image_size=image_size), **({"add_pooling_layer": False} if cls is ViTModel else {})
    )
    backbone.eval().save_pretrained(path)
    return backbone


def test_from_backbone_same_grid_is_the_backbone(tmp_path):
    backbone = save_tiny_vit(tmp_path, 32)
    model = LATransformerForReID.from_backbone(str(tmp_path), num_labels=3, lambda_global=0.5).eval()
    assert model.config.image_size == (32, 32)
    assert model.config.num_parts == 8 and model.config.lambda_global == 0.5 and model.config.num_labels == 3
    for name, tensor in backbone.state_dict().items():
        assert torch.equal(model.vit.state_dict()[name], tensor), name
    pixel_values = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.vit(pixel_values).last_hidden_state, backbone(pixel_values).last_hidden_state)


def test_from_backbone_interpolates_position_embeddings(tmp_path):
    backbone = save_tiny_vit(tmp_path, 32)  # 8x8 grid
    model = LATransformerForReID.from_backbone(str(tmp_path), num_labels=3, image_size=(32, 16)).eval()
    assert model.config.image_size == (32, 16) and model.config.grid_size == (8, 4)

    source = backbone.embeddings.position_embeddings.detach()
    grid = source[:, 1:].reshape(1, 8, 8, 32).permute(0, 3, 1, 2)
    resized = (
        F.interpolate(grid, size=(8, 4), mode="bicubic", align_corners=False).permute(0, 2, 3, 1).reshape(1, 32, 32)
    )
    expected = torch.cat([source[:, :1], resized], dim=1)
    torch.testing.assert_close(model.vit.embeddings.position_embeddings.detach(), expected, atol=1e-6, rtol=1e-6)
    for name, tensor in backbone.state_dict().items():
        if name != "embeddings.position_embeddings":
            assert torch.equal(model.vit.state_dict()[name], tensor), name
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 16)).logits.shape == (2, 8, 3)


def test_from_backbone_reads_an_image_classification_checkpoint(tmp_path):
    classifier = save_tiny_vit(tmp_path, 32, cls=ViTForImageClassification)  # how google/vit-* are published
    model = LATransformerForReID.from_backbone(str(tmp_path), num_labels=3)
    for name, tensor in classifier.vit.state_dict().items():
        assert torch.equal(model.vit.state_dict()[name], tensor), name


def test_from_backbone_refuses_an_unsupported_backbone(tmp_path):
    SwinConfig().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"holds a 'swin' model: LA-Transformer backbones are 'vit', 'deit', 'dinov2'"):
        LATransformerForReID.from_backbone(str(tmp_path), num_labels=3)


@pytest.mark.filterwarnings("error::FutureWarning")  # the current names, not the deprecated gradient_checkpointing_*
def test_activation_checkpointing_gives_the_same_gradients():
    tester = LATransformerModelTester(head_dropout=0.0)
    pixel_values, labels = tester.prepare_inputs()
    reference = tester.get_model().train()
    checkpointed = copy.deepcopy(reference)
    # transformers 5.24's name (TrainingArguments(activation_checkpointing=True) calls it).
    checkpointed.activation_checkpointing_enable()
    assert checkpointed.is_activation_checkpointing and not reference.is_activation_checkpointing

    losses, layer_calls = [], []
    for model in (reference, checkpointed):
        calls, mlp = [], model.vit.layers[0].mlp
        mlp_forward = mlp.forward
        mlp.forward = lambda *args, calls=calls, forward=mlp_forward, **kwargs: (
            calls.append(1) or forward(*args, **kwargs)
        )
        loss = model(pixel_values, labels=labels).loss
        loss.backward()
        del mlp.forward
        losses.append(loss.detach())
        layer_calls.append(len(calls))
    assert layer_calls == [1, 2]  # the layer's insides run again during backward
    torch.testing.assert_close(losses[0], losses[1])
    for (name, p_ref), (_, p_ckpt) in zip(reference.named_parameters(), checkpointed.named_parameters()):
        torch.testing.assert_close(p_ckpt.grad, p_ref.grad, atol=1e-6, rtol=1e-5, msg=name)

    optimizer = torch.optim.SGD(checkpointed.parameters(), lr=0.1)
    optimizer.step()
    optimizer.zero_grad()
    assert checkpointed(pixel_values, labels=labels).loss < losses[1]


def top_block_frozen_below(model):
    """Blockwise unfreezing's first stage: embeddings and all blocks but the top one frozen."""
    model.vit.embeddings.requires_grad_(False)
    for block in model.vit.layers[:-1]:
        block.requires_grad_(False)
    return model


@pytest.mark.parametrize("kwargs", [{"use_reentrant": True}, {}, None, {"use_reentrant": False}])
def test_activation_checkpointing_trains_the_unfrozen_top_block(kwargs):
    """Reentrant checkpointing gives a block no gradient when its input needs none: the top block must still learn."""
    tester = LATransformerModelTester(head_dropout=0.0)
    pixel_values, labels = tester.prepare_inputs()
    reference = top_block_frozen_below(tester.get_model().train())
    checkpointed = copy.deepcopy(reference)
    with pytest.warns() if kwargs == {} else contextlib.nullcontext():  # torch asks to pass use_reentrant explicitly
        checkpointed.activation_checkpointing_enable(kwargs)
        checkpointed(pixel_values, labels=labels).loss.backward()
    reference(pixel_values, labels=labels).loss.backward()
    top = dict(checkpointed.vit.layers[-1].named_parameters())
    for name, p_ref in reference.vit.layers[-1].named_parameters():
        assert top[name].grad is not None, name
        torch.testing.assert_close(top[name].grad, p_ref.grad, atol=1e-6, rtol=1e-5, msg=name)
    assert all(p.grad is None for p in checkpointed.vit.layers[0].parameters())

    checkpointed.activation_checkpointing_disable()
    assert not checkpointed.is_activation_checkpointing and not getattr(checkpointed, "_require_grads_hooks", None)


def test_predict_runs_in_eval_mode_and_restores_training_mode(tester, model):
    pixel_values, _ = tester.prepare_inputs()
    model.train()
    running_means = [head.norm.running_mean.clone() for head in model.part_classifiers]
    first, _ = model.predict(pixel_values)
    second, _ = model.predict(pixel_values)  # no dropout: deterministic
    assert model.training and first.tolist() == second.tolist()
    for head, before in zip(model.part_classifiers, running_means):
        torch.testing.assert_close(head.norm.running_mean, before, rtol=0, atol=0)


def test_not_registered_as_an_image_classifier(tester):
    """Per-part logits (batch, parts, labels) do not fit AutoModelForImageClassification's contract."""
    from transformers import AutoModelForImageClassification
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING

    assert LATransformerConfig not in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING
    with pytest.raises(ValueError, match="Unrecognized configuration class"):
        AutoModelForImageClassification.from_config(tester.get_config())


# ----------------------------------------------------------------------------------- row-head initialisation
def assert_row_heads_initialised(model, check_classifier=True):
    """PCB / original-code init of every row head: kaiming fan-out bottleneck, BN weight ~ N(1, 0.02), classifier
    ~ N(0, 0.001), zero biases (tolerances fit the sample sizes of `init_config`)."""
    heads = model.part_classifiers
    dense = torch.cat([head.dense.weight.detach().flatten() for head in heads])
    fan_out = heads[0].dense.out_features
    assert dense.std().item() == pytest.approx((2.0 / fan_out) ** 0.5, rel=0.05)
    norm = torch.cat([head.norm.weight.detach() for head in heads])
    assert norm.mean().item() == pytest.approx(1.0, abs=0.005)
    assert norm.std().item() == pytest.approx(0.02, rel=0.15)
    for head in heads:
        assert torch.count_nonzero(head.dense.bias) == 0 and torch.count_nonzero(head.norm.bias) == 0
    if check_classifier:
        classifier = torch.cat([head.classifier.weight.detach().flatten() for head in heads])
        assert classifier.std().item() == pytest.approx(0.001, rel=0.05)
        assert all(torch.count_nonzero(head.classifier.bias) == 0 for head in heads)


def init_config(num_labels=50) -> LATransformerConfig:
    """The tiny test ViT with 256-wide bottlenecks and 50 labels: enough weights for the std checks."""
    config = LATransformerModelTester(num_labels=num_labels).get_config()
    config.bottleneck_dim = 256
    return config


def test_row_heads_get_their_init_on_a_fresh_model():
    torch.manual_seed(0)
    model = LATransformerForReID(init_config())
    assert model.part_classifiers[0].dense.weight.shape == (256, 32)
    assert_row_heads_initialised(model)
    # the backbone keeps transformers' ViT init
    assert model.vit.layers[0].attention.q_proj.weight.std().item() == pytest.approx(0.02, rel=0.1)


def test_row_heads_get_their_init_with_from_backbone(tmp_path):
    save_tiny_vit(tmp_path, 32)
    torch.manual_seed(0)
    model = LATransformerForReID.from_backbone(str(tmp_path), num_labels=50, bottleneck_dim=256)
    assert_row_heads_initialised(model)


def test_head_swap_initialises_the_new_classifiers_and_keeps_the_rest(tmp_path):
    torch.manual_seed(0)
    saved = LATransformerForReID(init_config(num_labels=5))
    saved.save_pretrained(tmp_path)
    swapped = LATransformerForReID.from_pretrained(tmp_path, num_labels=50, ignore_mismatched_sizes=True)
    assert swapped.part_classifiers[0].classifier.weight.shape == (50, 256)
    assert_row_heads_initialised(swapped)
    for old, new in zip(saved.part_classifiers, swapped.part_classifiers):
        assert torch.equal(old.dense.weight, new.dense.weight) and torch.equal(old.norm.weight, new.norm.weight)


@pytest.mark.parametrize("cls", [ViTModel, ViTForImageClassification])
def test_from_pretrained_of_a_plain_vit_folder_says_to_use_from_backbone(tmp_path, cls):
    save_tiny_vit(tmp_path, 32, cls=cls)
    with pytest.raises(ValueError) as error:
        LATransformerForReID.from_pretrained(str(tmp_path))
    message = str(error.value)
    assert message == (
        f"{tmp_path} holds a 'vit' model, not an LA-Transformer: build one from it with "
        f"LATransformerForReID.from_backbone({str(tmp_path)!r}, num_labels=...)."
    )
    # The folder still loads as what it is, and from_backbone builds an LA-Transformer from it.
    assert type(AutoModel.from_pretrained(str(tmp_path))).__name__ == "ViTModel"
    assert LATransformerForReID.from_backbone(str(tmp_path), num_labels=3).config.num_parts == 8


def test_from_backbone_of_an_lareid_folder_says_to_use_from_pretrained(tmp_path, model):
    model.save_pretrained(tmp_path)
    with pytest.raises(
        ValueError, match=r"already an LA-Transformer: load it with LATransformerForReID.from_pretrained"
    ):
        LATransformerForReID.from_backbone(str(tmp_path), num_labels=3)
