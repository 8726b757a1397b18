"""Your files are safe: every writing command, run over a folder holding a user's own files, refuses before any work
and leaves each file byte-identical; a command's own earlier output is accepted again (`hf_lareid.utils.output_guard`)."""

import shutil

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_cli, run_evaluate, run_index, run_search, snapshot
from PIL import Image

from hf_lareid.retrieval import GalleryIndex
from hf_lareid.utils.output_guard import MANIFEST_NAME, ForeignFileError, check_outputs, claim_outputs


@pytest.fixture
def user_folder(tmp_path, tiny_model_dir):
    """A user's project folder: README.md, config.json, metrics.json, a PNG, an ONNX file and a model of their own."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "README.md").write_text("# my project\n")
    (folder / "config.json").write_text('{"my": "settings"}\n')
    (folder / "metrics.json").write_text('{"accuracy": 0.9}\n')
    Image.new("RGB", (8, 8), (200, 30, 30)).save(folder / "ranked_lists.png")
    (folder / "reid.onnx").write_bytes(b"my exported model")
    shutil.copy(tiny_model_dir / "model.safetensors", folder / "model.safetensors")
    shutil.copytree(tiny_model_dir, folder / "fine-tuned")
    return folder


def assert_untouched(folder, before):
    """Every file as it was, and nothing added (no manifest, no lock, no temporary file)."""
    assert snapshot(folder) == before
    assert sorted(p.name for p in folder.iterdir()) == sorted({path.split("/")[0] for path in before})


def test_train_refuses_a_project_folder_before_any_work(tmp_path, capsys):
    project = tmp_path / "p"
    project.mkdir()
    (project / "README.md").write_text("# my project\n")
    before = snapshot(project)
    status, _, err = run_cli("train", "--output_dir", project, "--max_steps", 2, capsys=capsys)
    assert_one_line_error(status, err, str(project / "README.md"), "another --output_dir")
    assert_untouched(project, before)


def test_train_refuses_foreign_files_even_with_overwrite_output_dir(user_folder, capsys):
    before = snapshot(user_folder)
    status, _, err = run_cli("train", "--output_dir", user_folder, capsys=capsys)
    assert_one_line_error(status, err, str(user_folder), "--overwrite_output_dir")
    status, _, err = run_cli("train", "--output_dir", user_folder, "--overwrite_output_dir", "True", capsys=capsys)
    assert_one_line_error(status, err, "not a file hf-lareid wrote", "another --output_dir")
    assert_untouched(user_folder, before)


def test_train_without_output_dir_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = run_cli("train", capsys=capsys)
    assert status == 2 and "--output_dir" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no ./trainer_output


def test_demo_checks_every_output_before_the_first_step(user_folder, capsys):
    before = snapshot(user_folder)
    status, out, err = run_cli("demo", "--quick", "--output_dir", user_folder, capsys=capsys)
    line = assert_one_line_error(status, err, "choose another --output_dir")
    assert any(str(user_folder / name) in line for name in ("fine-tuned", "metrics.json", "ranked_lists.png"))
    assert "[1/6]" not in out  # refused before generating anything
    assert_untouched(user_folder, before)


def test_index_refuses_a_folder_that_is_not_an_index(user_folder, tiny_model_dir, market_dir, capsys):
    before = snapshot(user_folder)
    status, _, err = run_index(tiny_model_dir, market_dir, user_folder, capsys=capsys)
    assert_one_line_error(status, err, str(user_folder), "not a gallery index")
    assert_untouched(user_folder, before)


def test_export_onnx_refuses_the_users_file(user_folder, tiny_model_dir, capsys):
    before = snapshot(user_folder)
    status, _, err = run_cli("export-onnx", tiny_model_dir, user_folder / "reid.onnx", capsys=capsys)
    assert_one_line_error(status, err, str(user_folder / "reid.onnx"), "another .onnx file name")
    assert_untouched(user_folder, before)


def test_evaluate_refuses_the_users_output_file(user_folder, tiny_model_dir, market_dir, capsys):
    before = snapshot(user_folder)
    status, _, err = run_evaluate(tiny_model_dir, market_dir, "--output", user_folder / "metrics.json", capsys=capsys)
    assert_one_line_error(status, err, str(user_folder / "metrics.json"), "another --output file")
    assert_untouched(user_folder, before)


def test_evaluate_writes_no_file_by_default_and_rewrites_only_its_own(
    user_folder, tiny_model_dir, market_dir, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(user_folder)
    before = snapshot(user_folder)
    status, out, _ = run_evaluate(tiny_model_dir, market_dir, capsys=capsys)
    assert status == 0 and "| market" in out
    assert_untouched(user_folder, before)  # no ./lareid-eval.json
    results = user_folder / "results.json"
    for _ in range(2):  # the second run replaces the file the first one wrote
        assert run_evaluate(tiny_model_dir, market_dir, "--output", results, capsys=capsys)[0] == 0
    assert '"results"' in results.read_text()
    assert {name: digest for name, digest in snapshot(user_folder).items() if name in before} == before


def test_search_refuses_the_users_picture_before_loading_the_model(user_folder, tmp_path, market_dir, capsys):
    index_dir = tmp_path / "index"
    vectors = np.eye(4, dtype=np.float32)
    index = GalleryIndex(4, model_reference=str(tmp_path / "no-such-model"), data_dir=str(market_dir))
    index.add(vectors, person_ids=[1, 2, 3, 4], camera_ids=[1, 1, 2, 2], paths=["a.jpg", "b.jpg", "c.jpg", "d.jpg"])
    index.save(index_dir)
    query = next(market_dir.glob("query/*.jpg"))
    before = snapshot(user_folder)
    status, _, err = run_search(index_dir, query, "--picture", user_folder / "ranked_lists.png", capsys=capsys)
    assert_one_line_error(status, err, str(user_folder / "ranked_lists.png"), "another --picture")
    status, _, err = run_search(index_dir, query, "--output_json", user_folder / "metrics.json", capsys=capsys)
    assert_one_line_error(status, err, str(user_folder / "metrics.json"))
    assert_untouched(user_folder, before)


def test_convert_original_refuses_a_folder_with_foreign_files(user_folder, tmp_path, capsys):
    before = snapshot(user_folder)
    checkpoint = tmp_path / "net_best.pth"
    checkpoint.write_bytes(b"never read: the folder is refused first")
    status, _, err = run_cli("convert-original", checkpoint, user_folder, capsys=capsys)
    assert_one_line_error(status, err, str(user_folder), "exists and is not empty", "choose a new output folder")
    assert_untouched(user_folder, before)


def test_claims_accept_own_output_and_refuse_changed_or_foreign_files(tmp_path):
    out = tmp_path / "out"
    targets = [out / "metrics.json", out / "cmc.png", out / "model"]
    with claim_outputs(targets, fix="choose another folder"):
        (out / "metrics.json").write_text("{}")
        (out / "model").mkdir()  # cmc.png is never written: its claim is dropped
    check_outputs(targets, fix="x")  # a second run over its own output is accepted
    assert set(__import__("json").loads((out / MANIFEST_NAME).read_text())["entries"]) == {"metrics.json", "model"}
    (out / "cmc.png").write_bytes(b"the user's picture, made after the run")
    with pytest.raises(ForeignFileError, match="cmc.png exists and is not a file hf-lareid wrote"):
        check_outputs(targets, fix="x")
    (out / "cmc.png").unlink()
    (out / "metrics.json").write_text('{"edited": "by the user"}')
    with pytest.raises(ForeignFileError, match="metrics.json"):
        check_outputs(targets, fix="x")


def test_a_run_stopped_before_recording_can_run_again(tmp_path):
    target = tmp_path / "out" / "metrics.json"
    claim = claim_outputs([target], fix="x")
    claim.__enter__()  # claimed, then the process is killed: the end of the block never runs
    target.write_text("half")
    with claim_outputs([target], fix="x"):  # what the killed run wrote is its own
        target.write_text("whole")
    check_outputs([target], fix="x")
    (tmp_path / "out" / "empty").mkdir()
    check_outputs([tmp_path / "out" / "empty"], fix="x")  # an empty folder holds nothing to lose
