"""The converter from the original LA-Transformer code, checked against an independent plain-torch reference."""

import functools
import json
import math

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel

from hf_lareid import LATransformerForReID
from hf_lareid.convert_original import ConversionError, convert_original_checkpoint
from hf_lareid_cli import main as lareid

# The original is ViT-B/16 at 224: width 768, MLP 3072, twelve 64-wide heads (which the converter infers from the
# width), 12 blocks, 14 row classifiers with a 256-wide bottleneck. The test builds exactly those shapes and key
# names, with only the depth reduced (2 blocks) so that it runs in about a second; the reference below is generic.
DEPTH, WIDTH, HEADS, MLP, PATCH, GRID, PARTS, BOTTLENECK, CLASSES = 2, 768, 12, 3072, 16, 14, 14, 256, 10
LAMBDA_CODE = 8.0


class NotATensor:
    """Something a weights-only load must refuse to unpickle."""


def original_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """
    Random tensors under the exact names and shapes that the original code's `state_dict()` has.

    A new dict each call, so a test may add, delete or replace keys; the tensors are drawn once per seed and shared
    (ViT-B/16 blocks take a while to draw), so they must not be modified in place.
    """
    return dict(_random_original_state_dict(seed))


@functools.lru_cache(maxsize=1)
def _random_original_state_dict(seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape, std=0.02, mean=0.0):
        return torch.randn(*shape, generator=generator) * std + mean

    # Linear weights scaled by 1/sqrt(fan_in) keep the activations of order one at full width, so the attention is
    # neither uniform nor one-hot and a wrong head split, q/k/v order or row pooling changes the outputs.
    w_in, w_mlp, w_bottleneck = WIDTH**-0.5, MLP**-0.5, BOTTLENECK**-0.5

    state = {
        "model.cls_token": randn(1, 1, WIDTH, std=0.5),
        "model.pos_embed": randn(1, 1 + GRID * GRID, WIDTH, std=0.5),
        "model.patch_embed.proj.weight": randn(WIDTH, 3, PATCH, PATCH, std=0.05),
        "model.patch_embed.proj.bias": randn(WIDTH),
    }
    for i in range(DEPTH):
        p = f"model.blocks.{i}."
        state.update(
            {
                p + "norm1.weight": randn(WIDTH, std=0.1, mean=1.0),
                p + "norm1.bias": randn(WIDTH, std=0.1),
                p + "attn.qkv.weight": randn(3 * WIDTH, WIDTH, std=w_in),
                p + "attn.qkv.bias": randn(3 * WIDTH, std=0.1),
                p + "attn.proj.weight": randn(WIDTH, WIDTH, std=w_in),
                p + "attn.proj.bias": randn(WIDTH),
                p + "norm2.weight": randn(WIDTH, std=0.1, mean=1.0),
                p + "norm2.bias": randn(WIDTH, std=0.1),
                p + "mlp.fc1.weight": randn(MLP, WIDTH, std=w_in),
                p + "mlp.fc1.bias": randn(MLP),
                p + "mlp.fc2.weight": randn(WIDTH, MLP, std=0.5 * w_mlp),
                p + "mlp.fc2.bias": randn(WIDTH),
            }
        )
    state.update(
        {
            "model.norm.weight": randn(WIDTH, std=0.1, mean=1.0),
            "model.norm.bias": randn(WIDTH, std=0.1),
            "model.head.weight": randn(751, WIDTH),
            "model.head.bias": randn(751),
        }
    )
    state["cls_token"] = state["model.cls_token"].clone()
    state["pos_embed"] = state["model.pos_embed"].clone()
    for i in range(PARTS):
        p = f"classifier{i}."
        state.update(
            {
                p + "add_block.0.weight": randn(BOTTLENECK, WIDTH, std=w_in),
                p + "add_block.0.bias": randn(BOTTLENECK),
                p + "add_block.1.weight": randn(BOTTLENECK, std=0.1, mean=1.0),
                p + "add_block.1.bias": randn(BOTTLENECK, std=0.1),
                p + "add_block.1.running_mean": randn(BOTTLENECK, std=0.1),
                p + "add_block.1.running_var": torch.rand(BOTTLENECK, generator=generator) + 0.5,
                p + "add_block.1.num_batches_tracked": torch.tensor(1000),
                p + "classifier.0.weight": randn(CLASSES, BOTTLENECK, std=w_bottleneck),
                p + "classifier.0.bias": randn(CLASSES),
            }
        )
    return state


def reference_tokens(state, pixel_values):
    """timm's ViT: patch conv, CLS + position, blocks x + attn(norm1(x)), x + mlp(norm2(x)) (exact GELU), final norm."""
    batch = pixel_values.shape[0]
    x = F.conv2d(
        pixel_values, state["model.patch_embed.proj.weight"], state["model.patch_embed.proj.bias"], stride=PATCH
    )
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([state["model.cls_token"].expand(batch, -1, -1), x], dim=1) + state["model.pos_embed"]
    tokens, head_dim = x.shape[1], WIDTH // HEADS
    for i in range(DEPTH):
        p = f"model.blocks.{i}."
        h = F.layer_norm(x, (WIDTH,), state[p + "norm1.weight"], state[p + "norm1.bias"], eps=1e-6)
        qkv = F.linear(h, state[p + "attn.qkv.weight"], state[p + "attn.qkv.bias"])
        q, k, v = qkv.reshape(batch, tokens, 3, HEADS, head_dim).permute(2, 0, 3, 1, 4)
        attention = (q @ k.transpose(-2, -1) / math.sqrt(head_dim)).softmax(dim=-1)
        h = (attention @ v).transpose(1, 2).reshape(batch, tokens, WIDTH)
        x = x + F.linear(h, state[p + "attn.proj.weight"], state[p + "attn.proj.bias"])
        h = F.layer_norm(x, (WIDTH,), state[p + "norm2.weight"], state[p + "norm2.bias"], eps=1e-6)
        h = F.linear(
            F.gelu(F.linear(h, state[p + "mlp.fc1.weight"], state[p + "mlp.fc1.bias"])),
            state[p + "mlp.fc2.weight"],
            state[p + "mlp.fc2.bias"],
        )
        x = x + h
    return F.layer_norm(x, (WIDTH,), state["model.norm.weight"], state["model.norm.bias"], eps=1e-6)


def reference_outputs(state, pixel_values):
    """The original head: (per-row logits (batch, parts, classes), original test features (batch, parts * width))."""
    x = reference_tokens(state, pixel_values)
    global_token = x[:, 0]
    rows = F.adaptive_avg_pool2d(x[:, 1:], (PARTS, WIDTH))  # the original's nn.AdaptiveAvgPool2d((14, 768))
    logits = []
    for i in range(PARTS):
        p = f"classifier{i}."
        blended = (global_token + LAMBDA_CODE * rows[:, i]) / (1 + LAMBDA_CODE)
        z = F.linear(blended, state[p + "add_block.0.weight"], state[p + "add_block.0.bias"])
        z = (z - state[p + "add_block.1.running_mean"]) / torch.sqrt(state[p + "add_block.1.running_var"] + 1e-5)
        z = z * state[p + "add_block.1.weight"] + state[p + "add_block.1.bias"]
        logits.append(F.linear(z, state[p + "classifier.0.weight"], state[p + "classifier.0.bias"]))
    features = rows / (rows.norm(dim=-1, keepdim=True) * math.sqrt(PARTS))
    return torch.stack(logits, dim=1), features.flatten(1)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("original") / "net_best.pth"
    torch.save(original_state_dict(), path)
    return path


@pytest.fixture(scope="module")
def pixel_values():
    return torch.randn(2, 3, GRID * PATCH, GRID * PATCH, generator=torch.Generator().manual_seed(1))


def test_converted_model_reproduces_the_original(checkpoint, pixel_values, tmp_path):
    model = convert_original_checkpoint(checkpoint, tmp_path / "converted")
    config = model.config
    assert config.backbone_config.num_hidden_layers == DEPTH and config.hidden_size == WIDTH
    assert config.backbone_config.num_attention_heads == HEADS and config.backbone_config.intermediate_size == MLP
    assert config.image_size == (224, 224) and config.num_parts == PARTS and config.num_labels == CLASSES
    assert config.backbone_config.layer_norm_eps == 1e-6
    assert config.lambda_global == pytest.approx(1 / LAMBDA_CODE)
    assert config.head_activation is None and config.embedding == "local"

    expected_logits, expected_features = reference_outputs(original_state_dict(), pixel_values)
    reloaded = AutoModel.from_pretrained(tmp_path / "converted").eval()
    assert isinstance(reloaded, LATransformerForReID)
    with torch.no_grad():
        for candidate in (model, reloaded):
            out = candidate(pixel_values)
            assert (out.logits - expected_logits).abs().max() < 1e-3
            assert (out.embeddings - expected_features).abs().max() < 1e-4


def test_cli_writes_a_loadable_folder_with_original_preprocessing(checkpoint, tmp_path):
    out_dir = tmp_path / "cli"
    assert (
        lareid(["convert-original", str(checkpoint), str(out_dir), "--lambda", "4", "--num-labels", str(CLASSES)]) == 0
    )
    assert sorted(p.name for p in out_dir.iterdir()) == ["config.json", "model.safetensors", "preprocessor_config.json"]
    config = json.loads((out_dir / "config.json").read_text())
    assert config["model_type"] == "la-transformer" and config["backbone_config"]["model_type"] == "vit"
    assert config["lambda_global"] == 0.25
    processor = json.loads((out_dir / "preprocessor_config.json").read_text())
    assert processor["size"] == {"height": 224, "width": 224}
    assert processor["resample"] == 3  # bicubic
    assert processor["image_mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert processor["image_std"] == pytest.approx([0.229, 0.224, 0.225])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cli.")]  # no staging folder left behind


def convert_state(state, tmp_path, **kwargs):
    path = tmp_path / "edited.pth"
    torch.save(state, path)
    return convert_original_checkpoint(path, tmp_path / "out", **kwargs)


def test_leftover_key_is_named(tmp_path):
    state = original_state_dict()
    state["model.blocks.0.attn.extra_scale"] = torch.ones(1)
    with pytest.raises(ConversionError, match=r"no place in the model.*model\.blocks\.0\.attn\.extra_scale"):
        convert_state(state, tmp_path)
    assert not (tmp_path / "out").exists()


def test_missing_key_is_named(tmp_path):
    state = original_state_dict()
    del state["classifier3.add_block.1.running_var"]
    with pytest.raises(ConversionError, match=r"missing \['part_classifiers\.3\.norm\.running_var'\]"):
        convert_state(state, tmp_path)


def test_alias_must_match_the_backbone_tensor(tmp_path):
    state = original_state_dict()
    state["pos_embed"] = state["pos_embed"] + 1
    with pytest.raises(ConversionError, match="'pos_embed' is not the same tensor as 'model.pos_embed'"):
        convert_state(state, tmp_path)


def test_num_labels_must_match_the_classifiers(tmp_path):
    with pytest.raises(ConversionError, match="does not match the checkpoint's classifiers"):
        convert_state(original_state_dict(), tmp_path, num_labels=CLASSES + 1)


def test_pickle_that_is_not_weights_only_is_refused(tmp_path):
    path = tmp_path / "unsafe.pth"
    torch.save({"model.cls_token": torch.zeros(1, 1, WIDTH), "extra": NotATensor()}, path)
    with pytest.raises(ConversionError, match="only weights-only checkpoints are converted"):
        convert_original_checkpoint(path, tmp_path / "out")


def test_cli_reports_errors_without_a_traceback(checkpoint, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    assert lareid(["convert-original", str(checkpoint), str(tmp_path / "taken")]) == 1
    err = capsys.readouterr().err
    assert "exists and is not empty" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_converts_again_over_its_own_output(checkpoint, tmp_path):
    out_dir = tmp_path / "converted"
    assert lareid(["convert-original", str(checkpoint), str(out_dir)]) == 0
    assert (
        lareid(["convert-original", str(checkpoint), str(out_dir), "--lambda", "4"]) == 0
    )  # its own earlier conversion is replaced
    assert LATransformerForReID.from_pretrained(out_dir).config.lambda_global == pytest.approx(0.25)
