"""save_pretrained on a full disk or interrupted keeps the previous model; damaged weights are named on load."""

import json
import os
import stat

import pytest
import torch
from cli_helpers import assert_one_line_error, run_cli, run_evaluate, run_index, run_search, small_tmpfs, snapshot

from hf_lareid import LATransformerForReID, ModelWeightsMismatchError, verify_model_weights
from hf_lareid.utils.io import FAULT_ENV


def changed_copy(model_dir):
    """The saved model with one backbone weight changed (other weights, other fingerprint)."""
    model = LATransformerForReID.from_pretrained(model_dir)
    with torch.no_grad():
        model.vit.layernorm.bias.add_(0.25)
    return model


def assert_same_weights(model_dir, reference):
    loaded = LATransformerForReID.from_pretrained(model_dir)
    for name, tensor in reference.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, rtol=0, atol=0, msg=name)


def test_save_records_weights_sha256_with_normal_modes_and_keeps_other_files(tiny_model_dir):
    (tiny_model_dir / "checkpoint-3").mkdir()
    (tiny_model_dir / "my-notes.txt").write_text("mine")
    previous_umask = os.umask(0o022)
    try:
        changed_copy(tiny_model_dir).save_pretrained(tiny_model_dir)
    finally:
        os.umask(previous_umask)
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert set(config["weights_sha256"]) == {"model.safetensors"}
    assert verify_model_weights(tiny_model_dir) is True
    assert (tiny_model_dir / "my-notes.txt").read_text() == "mine" and (tiny_model_dir / "checkpoint-3").is_dir()
    assert not [name for name in os.listdir(tiny_model_dir) if name.startswith(".")]  # no staging left
    for name in ("model.safetensors", "config.json"):
        assert stat.S_IMODE(os.stat(tiny_model_dir / name).st_mode) == 0o644


@pytest.mark.parametrize("failing_file", ["model.safetensors", "config.json"])
def test_full_disk_during_save_keeps_the_previous_model(tiny_model_dir, tiny_model, failing_file, monkeypatch):
    before = snapshot(tiny_model_dir)
    monkeypatch.setenv(FAULT_ENV, f"write:{failing_file}")  # OSError(ENOSPC) once that file is written
    with pytest.raises(OSError, match="No space left"):
        changed_copy(tiny_model_dir).save_pretrained(tiny_model_dir)
    monkeypatch.delenv(FAULT_ENV)
    assert snapshot(tiny_model_dir) == before
    assert_same_weights(tiny_model_dir, tiny_model)
    assert verify_model_weights(tiny_model_dir)


def test_full_tmpfs_during_save_keeps_the_previous_model(tmp_path, tiny_model, tiny_image_processor):
    probe = tmp_path / "probe"
    tiny_model.save_pretrained(probe)
    size = sum(path.stat().st_size for path in probe.iterdir())
    # Room for one model and a half: the first save fits, a second (staged beside the first) cannot.
    with small_tmpfs(tmp_path / "disk", int(size * 1.5)) as disk:
        model_dir = disk / "model"
        tiny_model.save_pretrained(model_dir)
        before = snapshot(model_dir)
        with pytest.raises(Exception, match="No space left"):  # safetensors raises its own error type
            changed_copy(model_dir).save_pretrained(model_dir)
        assert snapshot(model_dir) == before and sorted(os.listdir(model_dir)) == ["config.json", "model.safetensors"]
        assert_same_weights(model_dir, tiny_model)
        assert verify_model_weights(model_dir)


def test_crash_between_weights_and_config_is_detected(tiny_model_dir, market_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(FAULT_ENV, "replace:config.json=interrupt")  # new weights are in place, the config is old
    with pytest.raises(KeyboardInterrupt):
        changed_copy(tiny_model_dir).save_pretrained(tiny_model_dir)
    monkeypatch.delenv(FAULT_ENV)
    with pytest.raises(ModelWeightsMismatchError, match="model.safetensors"):
        verify_model_weights(tiny_model_dir)
    status, _, err = run_index(tiny_model_dir, market_dir, tmp_path / "index", capsys=capsys)
    assert_one_line_error(status, err, "model.safetensors", "SHA-256")
    assert not (tmp_path / "index").exists()


@pytest.mark.parametrize("command", ["index", "evaluate", "search"])
def test_a_flipped_byte_in_the_weights_is_one_line_naming_the_file(
    command, tiny_model_dir, market_dir, tmp_path, capsys
):
    index_dir = tmp_path / "index"
    if command == "search":
        assert run_index(tiny_model_dir, market_dir, index_dir, capsys=capsys)[0] == 0
    weights = tiny_model_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF  # inside the last tensor: safetensors still loads it
    weights.write_bytes(bytes(data))
    LATransformerForReID.from_pretrained(tiny_model_dir)  # loads silently: only the recorded SHA-256 tells
    if command == "index":
        status, _, err = run_index(tiny_model_dir, market_dir, index_dir, capsys=capsys)
    elif command == "evaluate":
        status, _, err = run_evaluate(
            tiny_model_dir, market_dir, "--output_json", tmp_path / "eval.json", capsys=capsys
        )
    else:
        status, _, err = run_search(index_dir, next((market_dir / "query").glob("*.jpg")), capsys=capsys)
    assert_one_line_error(status, err, str(weights), "does not match")


def test_models_saved_elsewhere_are_not_checked(tiny_model_dir):
    config_path = tiny_model_dir / "config.json"
    config = json.loads(config_path.read_text())
    del config["weights_sha256"]
    config_path.write_text(json.dumps(config))
    assert verify_model_weights(tiny_model_dir) is False


def test_a_sharded_save_then_a_single_file_save_leaves_no_stale_shards(tiny_model_dir, tiny_model):
    tiny_model.save_pretrained(tiny_model_dir, max_shard_size="50KB")
    shards = sorted(p.name for p in tiny_model_dir.glob("model-*.safetensors"))
    recorded = json.loads((tiny_model_dir / "config.json").read_text())["weights_sha256"]
    assert len(shards) > 1 and sorted(recorded) == sorted([*shards, "model.safetensors.index.json"])
    assert verify_model_weights(tiny_model_dir)
    assert_same_weights(tiny_model_dir, tiny_model)
    tiny_model.save_pretrained(tiny_model_dir)
    assert not list(tiny_model_dir.glob("model-*")) and not (tiny_model_dir / "model.safetensors.index.json").exists()
    assert verify_model_weights(tiny_model_dir)
    assert_same_weights(tiny_model_dir, tiny_model)


def test_push_refuses_damaged_weights(tiny_model_dir, capsys):
    from hf_lareid.hub.modelcard import write_model_card

    write_model_card(tiny_model_dir, setup="tiny", datasets=["synthetic"], eval_dataset="synthetic")
    assert run_cli("push", tiny_model_dir, "me/lareid-tiny", "--dry_run", capsys=capsys)[0] == 0
    weights = tiny_model_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    status, _, err = run_cli("push", tiny_model_dir, "me/lareid-tiny", "--dry_run", capsys=capsys)
    assert_one_line_error(status, err, str(weights))
