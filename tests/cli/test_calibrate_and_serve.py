"""`lareid index --calibrate_on`, `lareid search --query_camera` and the command line of `lareid serve`."""

import json
import shutil
import subprocess
import sys

import pytest
import torch
from cli_helpers import assert_one_line_error, run_cli, run_index, run_search, tiny_market

from hf_lareid import LATransformerForReID
from hf_lareid.retrieval import GalleryIndex


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """8 test ids (query and gallery), 3 cameras x 2 images each, in the Market-1501 layout."""
    return tiny_market(tmp_path_factory.mktemp("people"), num_ids=16, num_cameras=3)


def test_index_calibrates_on_a_split_and_stores_the_whole_calibration(tiny_model_dir, people, tmp_path, capsys):
    index_dir = tmp_path / "index"
    status, out, _ = run_index(
        tiny_model_dir, people, index_dir, "--calibrate_on", "query", "--target_false_match_rate", "0.05", capsys=capsys
    )
    assert status == 0 and "calibrated on market1501 query split of" in out
    index = GalleryIndex.load(index_dir)
    calibration = index.verification_calibration
    assert calibration["threshold"] == index.verification_threshold
    assert calibration["target_false_match_rate"] == 0.05 and calibration["false_match_rate"] <= 0.05
    num_queries = len(list((people / "query").glob("*.jpg")))
    assert calibration["calibrated_on"] == f"market1501 query split of {people}: {num_queries} images of 8 people"
    assert calibration["num_genuine_pairs"] + calibration["num_impostor_pairs"] == num_queries * (num_queries - 1) // 2


def test_index_takes_the_model_configs_calibration_and_refuses_conflicting_flags(
    tiny_model_dir, people, tmp_path, capsys
):
    model = LATransformerForReID.from_pretrained(tiny_model_dir)
    calibration = {
        "threshold": 0.8,
        "target_false_match_rate": 0.01,
        "false_match_rate": 0.005,
        "true_match_rate": 0.5,
        "num_genuine_pairs": 3,
        "num_impostor_pairs": 300,
        "calibrated_on": "x",
    }
    model.config.set_verification_calibration(calibration)
    model_dir = tmp_path / "calibrated-model"
    model.save_pretrained(model_dir)
    shutil.copy(tiny_model_dir / "preprocessor_config.json", model_dir)
    assert run_index(model_dir, people, tmp_path / "index", capsys=capsys)[0] == 0
    assert GalleryIndex.load(tmp_path / "index").verification_calibration == calibration

    assert run_index(model_dir, people, tmp_path / "by-hand", "--threshold", "0.3", capsys=capsys)[0] == 0
    by_hand = GalleryIndex.load(tmp_path / "by-hand")
    assert (by_hand.verification_threshold, by_hand.verification_calibration) == (0.3, None)

    status, _, err = run_index(
        model_dir, people, tmp_path / "both", "--threshold", "0.3", "--calibrate_on", "query", capsys=capsys
    )
    assert_one_line_error(status, err, "--threshold", "--calibrate_on")
    status, _, err = run_index(model_dir, people, tmp_path / "none", "--calibrate_on", "validation", capsys=capsys)
    assert_one_line_error(status, err, "'validation'", "--calibrate_on")
    assert not (tmp_path / "both").exists() and not (tmp_path / "none").exists()


def test_search_with_a_query_camera_leaves_that_camera_out(tiny_model_dir, people, tmp_path, capsys):
    index_dir, hits_json = tmp_path / "index", tmp_path / "hits.json"
    assert run_index(tiny_model_dir, people, index_dir, capsys=capsys)[0] == 0
    index = GalleryIndex.load(index_dir)
    query = index.resolve_path(index.paths[0])
    camera = int(index.camera_ids[0])
    status, _, _ = run_search(
        index_dir, query, "--top_k", 100, "--query_camera", camera, "--output_json", hits_json, capsys=capsys
    )
    assert status == 0
    matches = json.loads(hits_json.read_text())["results"][0]["matches"]
    assert len(matches) == int((index.camera_ids != camera).sum()) and all(m["camera_id"] != camera for m in matches)
    status, _, err = run_search(index_dir, query, "--query_camera", 1, 2, capsys=capsys)
    assert_one_line_error(status, err, "--query_camera")


def test_serve_without_gradio_names_the_extra(tiny_model_dir, people, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # as if it were not installed
    status, _, err = run_cli("serve", "--index_dir", tmp_path / "index", capsys=capsys)
    assert_one_line_error(status, err, "'serve' extra", "gradio")


def test_serve_refuses_another_model_and_a_missing_index(tiny_model_dir, people, tmp_path, capsys):
    pytest.importorskip("gradio")
    index_dir = tmp_path / "index"
    assert run_index(tiny_model_dir, people, index_dir, capsys=capsys)[0] == 0
    other = LATransformerForReID.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        other.vit.layernorm.bias.add_(0.1)
    other.save_pretrained(tmp_path / "other")
    shutil.copy(tiny_model_dir / "preprocessor_config.json", tmp_path / "other")
    status, _, err = run_cli("serve", "--index_dir", index_dir, "--model", tmp_path / "other", capsys=capsys)
    assert_one_line_error(status, err, "fingerprint")
    status, _, err = run_cli("serve", "--index_dir", tmp_path / "nothing-here", capsys=capsys)
    assert_one_line_error(status, err, "nothing-here")


def test_serve_help_shows_an_example_without_importing_gradio():
    code = (
        "import sys\nfrom hf_lareid_cli import main\ntry:\n    main(['serve', '--help'])\nexcept SystemExit:\n"
        "    pass\nprint('gradio' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Example:\n  lareid serve --index_dir" in result.stdout
    assert "--index_dir" in result.stdout and "--model" in result.stdout and "--port" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "False"
