"""Models load whole: a lost encoder block, weights of another shape, an empty config.json or an impossible size are
one line naming the file and the fix, never a model with random weights (from_pretrained and every CLI load path)."""

import json

import pytest
from cli_helpers import assert_one_line_error, run_cli, run_evaluate, run_index
from model_factories import tiny_config
from safetensors.torch import load_file, save_file

from hf_lareid import LATransformerForReID
from hf_lareid.configuration_lareid import check_parameter_memory
from hf_lareid.utils.integrity import IncompleteModelError


def drop_second_block(model_dir, keep_checksum):
    """Rewrites model.safetensors without encoder block 1 (a 1-layer file under the 2-layer config.json); with
    `keep_checksum`, config.json records the new file's SHA-256, so only the weights' keys can tell."""
    weights = model_dir / "model.safetensors"
    state = load_file(weights)
    save_file({k: v for k, v in state.items() if ".layer.1." not in k}, weights, metadata={"format": "pt"})
    config_path = model_dir / "config.json"
    config = json.loads(config_path.read_text())
    if keep_checksum:
        from hf_lareid.utils.io import file_sha256

        config["weights_sha256"] = {"model.safetensors": file_sha256(weights)}
    else:
        config.pop("weights_sha256", None)
    config_path.write_text(json.dumps(config))
    return weights


@pytest.mark.parametrize("keep_checksum", [True, False])
def test_a_missing_encoder_block_does_not_load(tiny_model_dir, keep_checksum):
    weights = drop_second_block(tiny_model_dir, keep_checksum)
    with pytest.raises(IncompleteModelError) as error:
        LATransformerForReID.from_pretrained(tiny_model_dir)
    message = str(error.value)
    assert message.startswith(f"{weights} does not match its config.json: it lacks 16 weights")
    assert "layers.1.attention" in message and "Save the model again" in message


@pytest.mark.parametrize("command", ["evaluate", "index", "export-onnx"])
def test_cli_refuses_a_model_missing_a_block(command, tiny_model_dir, market_dir, tmp_path, capsys):
    weights = drop_second_block(tiny_model_dir, keep_checksum=True)
    if command == "evaluate":
        status, _, err = run_evaluate(tiny_model_dir, market_dir, capsys=capsys)
    elif command == "index":
        status, _, err = run_index(tiny_model_dir, market_dir, tmp_path / "index", capsys=capsys)
    else:
        status, _, err = run_cli("export-onnx", tiny_model_dir, tmp_path / "m.onnx", capsys=capsys)
    assert_one_line_error(status, err, str(weights), "lacks 16 weights", "layers.1.")
    assert not (tmp_path / "index").exists() and not (tmp_path / "m.onnx").exists()


def test_unexpected_weights_do_not_load(tiny_model_dir):
    weights = tiny_model_dir / "model.safetensors"
    state = load_file(weights)
    state["vit.extra_block.weight"] = state["vit.layernorm.weight"].clone()
    save_file(state, weights, metadata={"format": "pt"})
    config = json.loads((tiny_model_dir / "config.json").read_text())
    config.pop("weights_sha256")
    (tiny_model_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(IncompleteModelError, match=r"holds 1 weights the model has no place for \(vit.extra_block"):
        LATransformerForReID.from_pretrained(tiny_model_dir)


def test_a_head_swap_asked_for_still_loads(tiny_model_dir):
    model = LATransformerForReID.from_pretrained(tiny_model_dir, num_labels=7, ignore_mismatched_sizes=True)
    assert model.part_classifiers[0].classifier.out_features == 7
    _, info = LATransformerForReID.from_pretrained(tiny_model_dir, output_loading_info=True)
    assert info["missing_keys"] == [] or not info["missing_keys"]


def test_weights_of_another_shape_name_both_files_and_the_fix(tiny_model_dir):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    config["backbone_config"]["hidden_size"] = 64
    config.pop("weights_sha256")
    (tiny_model_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(IncompleteModelError) as error:
        LATransformerForReID.from_pretrained(tiny_model_dir)
    message = str(error.value)
    assert str(tiny_model_dir / "model.safetensors") in message and str(tiny_model_dir / "config.json") in message
    assert "other shapes" in message and "ignore_mismatched_sizes=True" in message and "above report" not in message


def test_an_empty_config_is_named(tiny_model_dir, market_dir, capsys):
    (tiny_model_dir / "config.json").write_text("{}")
    status, _, err = run_evaluate(tiny_model_dir, market_dir, capsys=capsys)
    assert_one_line_error(status, err, str(tiny_model_dir / "config.json"), "it is empty", "Copy the config.json")


def test_a_size_that_cannot_fit_names_the_field_before_allocating(tiny_model_dir, market_dir, capsys):
    config = tiny_config(num_labels=751)
    check_parameter_memory(config, memory_bytes=8 * 2**30)  # a real size passes
    with pytest.raises(ValueError, match=r"num_labels = 10,000,000 .* more than this machine's 8 GiB"):
        check_parameter_memory(config, num_labels=10_000_000, memory_bytes=8 * 2**30)
    config = json.loads((tiny_model_dir / "config.json").read_text())
    config["num_labels"] = 10**12  # more than any machine: refused before a byte is allocated
    del config["id2label"], config["label2id"]
    (tiny_model_dir / "config.json").write_text(json.dumps(config))
    status, _, err = run_evaluate(tiny_model_dir, market_dir, capsys=capsys)
    assert_one_line_error(status, err, "num_labels = 1,000,000,000,000", "fix config.json")
