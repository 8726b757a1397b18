"""Every `lareid` subcommand end to end on a tiny model and a small generated Market-layout set, and its bad inputs."""

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import (
    SMALL_SYNTHETIC,
    assert_one_line_error,
    flags,
    run_cli,
    run_evaluate,
    run_index,
    run_search,
    run_train,
    save_interrupted_index,
    tiny_market,
)
from PIL import Image

from hf_lareid import LATransformerForReID
from hf_lareid.analysis.pictures import OTHER_PERSON_COLOR, RIGHT_COLOR, SAME_PERSON_COLOR, TILE_SIZE, WRONG_COLOR
from hf_lareid.embedding import model_fingerprint
from hf_lareid.retrieval import GalleryIndex
from hf_lareid_cli import build_subcommand_parser, main


@pytest.fixture(scope="module")
def other_market_dir(tmp_path_factory):
    """Another population (other ids, other appearance seed) in the same layout: a second evaluation domain."""
    return tiny_market(tmp_path_factory.mktemp("other"), num_ids=8, num_cameras=3, seed=1, first_id=100)


def save_other_model(model_dir, output_dir):
    """The same architecture with one backbone weight changed: embeddings differ, so the fingerprint differs."""
    other = LATransformerForReID.from_pretrained(model_dir)
    with torch.no_grad():
        other.vit.layernorm.bias.add_(0.1)
    other.save_pretrained(output_dir)
    shutil.copy(model_dir / "preprocessor_config.json", output_dir)
    return output_dir


@pytest.mark.parametrize("command", ["demo", "evaluate", "index", "search", "convert-original", "export-onnx", "push"])
def test_every_subcommand_help_shows_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_subcommand_parser(command).parse_args(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: lareid {command} ")
    assert "Example:" in out and f"lareid {command}" in out.split("Example:")[1]
    assert main([command, "--help"]) == 0 and capsys.readouterr().out == out


def test_evaluate_prints_a_table_and_writes_json_with_one_row_per_dataset(
    tiny_model_dir, market_dir, other_market_dir, tmp_path, capsys
):
    output = tmp_path / "eval.json"
    status, out, _ = run_cli(
        "evaluate",
        tiny_model_dir,
        "--dataset",
        "market1501",
        "market1501",
        "--data_dir",
        market_dir,
        other_market_dir,
        "--output_json",
        output,
        capsys=capsys,
    )
    assert status == 0
    results = json.loads(output.read_text())["results"]
    assert [row["data_dir"] for row in results] == [str(market_dir), str(other_market_dir)]
    for row in results:
        assert 0.0 <= row["rank1"] <= row["rank5"] <= row["rank10"] <= 1.0 and 0.0 <= row["mAP"] <= 1.0
    # One query per test id and camera; each has a gallery match in another camera.
    assert [row["num_queries"] for row in results] == [6 * 2, 4 * 3]
    assert f"market1501 ({other_market_dir.name})" in out and str(output) in out


def test_evaluate_bad_inputs_are_one_line_errors(tiny_model_dir, market_dir, tmp_path, capsys):
    status, _, err = run_evaluate(tmp_path / "nope", market_dir, capsys=capsys)
    assert_one_line_error(status, err, "nope", "does not exist")
    status, _, err = run_evaluate(tiny_model_dir, tmp_path / "missing", capsys=capsys)
    assert_one_line_error(status, err, "missing")
    status, _, err = run_cli(
        "evaluate", tiny_model_dir, "--dataset", "market1501", "synthetic", "--data_dir", market_dir, capsys=capsys
    )
    assert_one_line_error(status, err, "one folder per dataset")
    # argparse: an unknown dataset name is refused with the choices (usage error: status 2)
    assert main(["evaluate", str(tiny_model_dir), "--dataset", "cuhk99", "--data_dir", str(market_dir)]) == 2
    assert "invalid choice: 'cuhk99'" in capsys.readouterr().err


def test_evaluate_reports_a_corrupt_image_by_name(tiny_model_dir, market_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(market_dir, broken)
    victim = sorted((broken / "query").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:40])  # a truncated JPEG
    status, _, err = run_evaluate(tiny_model_dir, broken, capsys=capsys)
    assert_one_line_error(status, err, victim.name)


def test_index_then_search_finds_the_gallery_image_itself(tiny_model_dir, market_dir, tmp_path, capsys):
    index_dir = tmp_path / "index"
    status, out, _ = run_index(tiny_model_dir, market_dir, index_dir, "--batch_size", 7, capsys=capsys)
    assert status == 0
    gallery_files = sorted((market_dir / "bounding_box_test").glob("*.jpg"))
    index = GalleryIndex.load(index_dir)
    assert len(index) == len(gallery_files) == 6 * 2 + 3  # one image per id and camera, plus 3 distractors
    assert index.model_reference == str(tiny_model_dir)
    # Paths are stored relative to the recorded data folder; resolve_path finds the files.
    assert index.data_dir == str(market_dir) and all(path.startswith("bounding_box_test/") for path in index.paths)
    assert sorted(Path(index.resolve_path(path)) for path in index.paths) == gallery_files
    assert index.model_fingerprint == model_fingerprint(LATransformerForReID.from_pretrained(tiny_model_dir))

    query = gallery_files[4]  # a gallery image is its own best match, with similarity 1
    picture, hits_json = tmp_path / "ranks.png", tmp_path / "hits.json"
    status, out, _ = run_search(
        index_dir, query, "--top_k", 3, "--picture", picture, "--output_json", hits_json, capsys=capsys
    )
    assert status == 0
    best = json.loads(hits_json.read_text())["results"][0]["matches"]
    assert len(best) == 3 and best[0]["path"] == str(query) and best[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert [m["score"] for m in best] == sorted((m["score"] for m in best), reverse=True)
    assert f"path={query}" in out
    with Image.open(picture) as image:
        assert image.format == "PNG" and image.width > image.height > 0


def test_index_resumes_an_interrupted_build_without_duplicates(tiny_model_dir, market_dir, tmp_path, capsys):
    index_dir = tmp_path / "index"
    assert run_index(tiny_model_dir, market_dir, index_dir, capsys=capsys)[0] == 0
    complete = GalleryIndex.load(index_dir)
    # Simulate an interruption after 5 images: keep a checkpoint holding only them.
    first = sorted(complete.paths)[:5]
    save_interrupted_index(complete, index_dir, [complete.paths.index(path) for path in first], first)
    status, out, _ = run_index(tiny_model_dir, market_dir, index_dir, capsys=capsys)
    assert status == 0 and "resuming" in out and f"indexed {len(complete) - 5} new images" in out
    resumed = GalleryIndex.load(index_dir)
    assert sorted(resumed.paths) == sorted(complete.paths)


def test_search_refuses_a_different_model_and_bad_inputs(tiny_model_dir, market_dir, tmp_path, capsys):
    index_dir = tmp_path / "index"
    assert run_index(tiny_model_dir, market_dir, index_dir, capsys=capsys)[0] == 0
    other_dir = save_other_model(tiny_model_dir, tmp_path / "other-model")
    query = next((market_dir / "query").glob("*.jpg"))

    status, _, err = run_search(index_dir, query, "--model", other_dir, capsys=capsys)
    assert_one_line_error(status, err, "fingerprint")
    status, _, err = run_search(tmp_path / "no-index", query, capsys=capsys)
    assert_one_line_error(status, err, "no-index")
    status, _, err = run_search(index_dir, tmp_path / "ghost.jpg", capsys=capsys)
    assert_one_line_error(status, err, "ghost.jpg")
    (index_dir / "index.faiss").write_bytes(b"garbage")  # a damaged index file
    status, _, err = run_search(index_dir, query, capsys=capsys)
    assert_one_line_error(status, err, "damaged")


def test_index_refuses_an_unknown_split_and_another_models_index(tiny_model_dir, market_dir, tmp_path, capsys):
    index_dir = tmp_path / "index"
    status, _, err = run_index(tiny_model_dir, market_dir, index_dir, "--split", "validation", capsys=capsys)
    assert_one_line_error(status, err, "validation", "--split")
    assert run_index(tiny_model_dir, market_dir, index_dir, capsys=capsys)[0] == 0
    other_dir = save_other_model(tiny_model_dir, tmp_path / "other-model")
    status, _, err = run_index(other_dir, market_dir, index_dir, capsys=capsys)
    assert_one_line_error(status, err, "fingerprint")


def test_export_onnx_writes_a_checked_model(tiny_model_dir, tmp_path, capsys):
    output = tmp_path / "model.onnx"
    status, out, _ = run_cli("export-onnx", tiny_model_dir, output, capsys=capsys)
    assert status == 0 and output.stat().st_size > 10_000
    difference = float(out.split("max abs diff ")[1].split()[0])
    assert difference < 1e-4
    status, _, err = run_cli("export-onnx", tmp_path / "nope", output, capsys=capsys)
    assert_one_line_error(status, err, "nope")


def test_convert_original_cli_writes_a_loadable_model(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "original_checkpoints", Path(__file__).parents[1] / "test_convert_original.py"
    )
    original = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(original)  # the converter's tests build a state dict with the original's key names

    checkpoint = tmp_path / "net_best.pth"
    torch.save(original.original_state_dict(), checkpoint)
    status, out, _ = run_cli("convert-original", checkpoint, tmp_path / "converted", "--lambda", 8, capsys=capsys)
    assert status == 0
    model = LATransformerForReID.from_pretrained(tmp_path / "converted")
    assert model.config.lambda_global == pytest.approx(1 / 8) and model.config.num_labels == original.CLASSES
    assert model.config.embedding == "local" and model.config.head_activation is None
    status, _, err = run_cli("convert-original", tmp_path / "missing.pth", tmp_path / "x", capsys=capsys)
    assert_one_line_error(status, err, "missing.pth")


def test_push_dry_run_lists_the_files_and_checks_the_card(tmp_path, capsys):
    from hf_lareid.scripts.train import main as train_main

    model_dir = tmp_path / "trained"
    train_main(
        [
            "--output_dir",
            str(model_dir),
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "8",
            "--report_to",
            "none",
            "--disable_tqdm",
            "true",
        ]
    )
    capsys.readouterr()
    status, out, _ = run_cli("push", model_dir, "me/lareid-tiny", "--dry_run", capsys=capsys)
    assert status == 0
    for name in ("model.safetensors", "config.json", "preprocessor_config.json", "README.md"):
        assert name in out
    assert "tags=['person-reid', 'la-transformer'" in out or "person-reid" in out

    (model_dir / "README.md").write_text("---\nlicense: mit\n---\nNo metadata.\n")
    status, _, err = run_cli("push", model_dir, "me/lareid-tiny", "--dry_run", capsys=capsys)
    assert_one_line_error(status, err, "library_name")
    (model_dir / "model.safetensors").unlink()
    status, _, err = run_cli("push", model_dir, "me/lareid-tiny", "--dry_run", capsys=capsys)
    assert_one_line_error(status, err, "model.safetensors")


def test_train_subcommand_runs_the_training_entry_point_with_progress_bars(tmp_path, capsys):
    output_dir = tmp_path / "out"
    short_run = flags(max_steps=2, per_device_train_batch_size=8, report_to="none")
    status, out, err = run_train(output_dir, tmp_path / "synthetic", *short_run, *SMALL_SYNTHETIC, capsys=capsys)
    assert status == 0
    assert out.strip().splitlines()[-1].startswith(f"saved the model to {output_dir}; final evaluation: Rank-1 ")
    assert "Loading weights" not in err and "Writing model shards" not in err
    model = LATransformerForReID.from_pretrained(output_dir)
    assert model.config.num_labels > 1 and (output_dir / "README.md").is_file()
    # tqdm bars on stderr: the Trainer's over the 2 steps, then the final evaluation's over the 6 + 6 images.
    assert "| 2/2 [" in err and "Query features: 100%" in err and "Gallery features: 100%" in err, err[-2000:]
    assert "WARNING" not in err  # the libraries' warnings stay quiet under `lareid`
    status, _, err = run_cli("train", "--output_dir", output_dir, "--setup", "no-such-setup", capsys=capsys)
    assert_one_line_error(status, err, "no-such-setup")


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        main(["--debug", "export-onnx", str(tmp_path / "nope"), str(tmp_path / "x.onnx")])


def test_search_draws_known_identities_green(tiny_model_dir, market_dir, tmp_path, capsys):
    """The picture frames a hit green exactly when its person id (from the index) equals the query's file-name id."""
    from hf_lareid.analysis.pictures import BORDER_WIDTH, RIGHT_COLOR

    index_dir = tmp_path / "index"
    assert run_index(tiny_model_dir, market_dir, index_dir, capsys=capsys)[0] == 0
    query = sorted((market_dir / "bounding_box_test").glob("0*.jpg"))[-1]  # a gallery image: top-1 is itself
    picture = tmp_path / "ranks.png"
    assert run_search(index_dir, query, "--top_k", 1, "--picture", picture, capsys=capsys)[0] == 0
    pixels = np.asarray(Image.open(picture).convert("RGB"))
    assert (np.abs(pixels.reshape(-1, 3).astype(int) - RIGHT_COLOR).sum(axis=1) == 0).sum() >= 4 * BORDER_WIDTH


def save_with_threshold(model_dir, output_dir, threshold):
    """The same model with `verification_threshold` set in its config (the index records it)."""
    model = LATransformerForReID.from_pretrained(model_dir)
    model.config.verification_threshold = threshold
    model.save_pretrained(output_dir)
    shutil.copy(model_dir / "preprocessor_config.json", output_dir)
    return output_dir


def test_threshold_from_the_model_config_flags_same_person_hits(tiny_model_dir, market_dir, tmp_path, capsys):
    model_dir = save_with_threshold(tiny_model_dir, tmp_path / "with-threshold", 0.9)
    index_dir, hits_json = tmp_path / "index", tmp_path / "hits.json"
    assert run_index(model_dir, market_dir, index_dir, capsys=capsys)[0] == 0
    assert GalleryIndex.load(index_dir).verification_threshold == pytest.approx(0.9)
    query = sorted((market_dir / "bounding_box_test").glob("*.jpg"))[0]
    assert run_search(index_dir, query, "--top_k", 15, "--output_json", hits_json, capsys=capsys)[0] == 0
    matches = json.loads(hits_json.read_text())["results"][0]["matches"]
    assert [m["same_person"] for m in matches] == [m["score"] > 0.9 for m in matches]
    assert {m["same_person"] for m in matches} == {True, False}  # the threshold splits this gallery
    assert matches[0]["same_person"]  # the image itself, similarity 1


def test_search_picture_of_an_unknown_person_shows_the_threshold_verdict(tiny_model_dir, market_dir, tmp_path, capsys):
    """A query without a Market-style name: hits framed by the index threshold's verdict, "wrote" said once."""
    from hf_lareid.analysis.pictures import BORDER_WIDTH

    model_dir = save_with_threshold(tiny_model_dir, tmp_path / "with-threshold", 0.9)
    index_dir, picture, hits_json = tmp_path / "index", tmp_path / "ranks.png", tmp_path / "hits.json"
    assert run_index(model_dir, market_dir, index_dir, capsys=capsys)[0] == 0
    query = tmp_path / "someone.jpg"  # identity unknown
    shutil.copy(sorted((market_dir / "bounding_box_test").glob("*.jpg"))[0], query)
    env = dict(os.environ, MPLCONFIGDIR=str(tmp_path / "mpl"))  # matplotlib builds its font cache afresh
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hf_lareid_cli",
            "search",
            "--index_dir",
            str(index_dir),
            str(query),
            "--top_k",
            "6",
            "--picture",
            str(picture),
            "--output_json",
            str(hits_json),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert output.lower().count(f"wrote {picture}".lower()) == 1 and "font cache" not in output
    verdicts = [m["same_person"] for m in json.loads(hits_json.read_text())["results"][0]["matches"]]
    assert True in verdicts and False in verdicts
    pixels = np.asarray(Image.open(picture).convert("RGB"))
    frame = (TILE_SIZE[0] + 2 * BORDER_WIDTH) * (TILE_SIZE[1] + 2 * BORDER_WIDTH) - TILE_SIZE[0] * TILE_SIZE[1]

    def count(color):
        return int((pixels == np.array(color, dtype=np.uint8)).all(axis=-1).sum())

    assert count(SAME_PERSON_COLOR) == verdicts.count(True) * frame
    assert count(OTHER_PERSON_COLOR) == verdicts.count(False) * frame
    assert count(RIGHT_COLOR) == count(WRONG_COLOR) == 0  # no identity colours for an unknown identity


def test_lareid_quiets_the_libraries_logs_but_not_with_debug():
    from hf_lareid_cli import QUIET_LOGGERS, configure_logging

    root = logging.getLogger()
    saved = root.level, list(root.handlers), {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    try:
        configure_logging(debug=False)
        # matplotlib's "building the font cache" line is a warning of this logger.
        assert not logging.getLogger("matplotlib.font_manager").isEnabledFor(logging.WARNING)
        assert not logging.getLogger("transformers.trainer").isEnabledFor(logging.WARNING)
        configure_logging(debug=True)
        assert logging.getLogger("matplotlib.font_manager").isEnabledFor(logging.WARNING)
    finally:  # leave the logging of the other tests as it was
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
