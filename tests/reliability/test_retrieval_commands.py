"""`lareid index` / `search` / `serve` as a user meets them: bad numbers refused as usage errors, a moved or copied
project folder keeps working, moved data is found with --data_dir, a taken port and a folder given for a file are
one line, a full disk loses nothing, and reading an index writes nothing."""

import errno
import json
import os
import shutil
import socket

import pytest
from cli_helpers import assert_one_line_error, run_cli, run_index, run_search, small_tmpfs, snapshot, tiny_market

from hf_lareid.retrieval import GalleryIndex


@pytest.fixture(scope="module")
def data_template(tmp_path_factory):
    """A small Market-layout set that tests copy into their own tree (so they may move it)."""
    return tiny_market(tmp_path_factory.mktemp("template"), num_ids=8, num_cameras=2)


def make_project(root, model_dir, data_template):
    """`root/model`, `root/data` and `root/index` built by `lareid index` from them (as `lareid demo` lays out)."""
    shutil.copytree(model_dir, root / "model")
    shutil.copytree(data_template, root / "data")
    return root / "index"


def a_query(root):
    return sorted((root / "data" / "query").glob("*.jpg"))[0]


def tree(folder):
    """Every entry under `folder`, hidden ones included (lock files are hidden)."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


# ------------------------------------------------------------------------------------------- numbers as they enter
@pytest.mark.parametrize(
    "flags, named",
    [
        (["--threshold", "nan"], "--threshold"),
        (["--threshold", "inf"], "--threshold"),
        (["--threshold", "1.5"], "--threshold"),
        (["--calibrate_on", "query", "--target_false_match_rate", "0"], "--target_false_match_rate"),
        (["--calibrate_on", "query", "--target_false_match_rate", "nan"], "--target_false_match_rate"),
        (["--checkpoint_every", "0"], "--checkpoint_every"),
    ],
)
def test_index_refuses_numbers_out_of_range_as_usage_errors(flags, named, tiny_model_dir, market_dir, tmp_path, capsys):
    status, _, err = run_index(tiny_model_dir, market_dir, tmp_path / "index", *flags, capsys=capsys)
    assert status == 2 and named in err and "Traceback" not in err
    assert not (tmp_path / "index").exists()


def test_search_refuses_a_top_k_below_one(tmp_path, capsys):
    status, _, err = run_search(tmp_path / "index", tmp_path / "q.jpg", "--top_k", "0", capsys=capsys)
    assert status == 2 and "--top_k" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------- moved and copied folders
def test_a_moved_project_folder_searches_and_a_copy_uses_its_own_files(tiny_model_dir, data_template, tmp_path, capsys):
    index_dir = make_project(tmp_path / "project", tiny_model_dir, data_template)
    assert run_index(tmp_path / "project" / "model", tmp_path / "project" / "data", index_dir, capsys=capsys)[0] == 0

    shutil.move(tmp_path / "project", tmp_path / "moved")
    hits = tmp_path / "hits.json"
    status, _, err = run_search(
        tmp_path / "moved" / "index", a_query(tmp_path / "moved"), "--output_json", hits, capsys=capsys
    )
    assert status == 0, err
    result = json.loads(hits.read_text())
    assert result["model"] == str(tmp_path / "moved" / "model")
    assert all(match["path"].startswith(str(tmp_path / "moved" / "data")) for match in result["results"][0]["matches"])

    shutil.copytree(tmp_path / "moved", tmp_path / "copy")
    shutil.rmtree(tmp_path / "moved")  # the copy must not need the original
    status, _, err = run_search(
        tmp_path / "copy" / "index", a_query(tmp_path / "copy"), "--output_json", hits, capsys=capsys
    )
    assert status == 0, err
    assert json.loads(hits.read_text())["model"] == str(tmp_path / "copy" / "model")


def test_a_missing_recorded_model_folder_names_the_model_flag(tiny_model_dir, data_template, tmp_path, capsys):
    model_dir = tmp_path / "models" / "reid"  # outside the index's tree: recorded as an absolute path
    shutil.copytree(tiny_model_dir, model_dir)
    index_dir = tmp_path / "project" / "index"
    assert run_index(model_dir, data_template, index_dir, capsys=capsys)[0] == 0
    shutil.move(model_dir, tmp_path / "reid-moved")
    query = sorted((data_template / "query").glob("*.jpg"))[0]
    status, _, err = run_search(index_dir, query, capsys=capsys)
    assert_one_line_error(status, err, str(model_dir), "does not exist", "--model")
    status, _, err = run_search(index_dir, query, "--model", tmp_path / "reid-moved", capsys=capsys)
    assert status == 0, err


def test_moved_data_is_found_with_data_dir(tiny_model_dir, data_template, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    data_dir = tmp_path / "photos" / "market"  # outside the index's tree
    shutil.copytree(data_template, data_dir)
    index_dir = tmp_path / "project" / "index"
    assert run_index(tiny_model_dir, data_dir, index_dir, capsys=capsys)[0] == 0
    shutil.move(data_dir, tmp_path / "market-moved")
    query, picture = sorted((tmp_path / "market-moved" / "query").glob("*.jpg"))[0], tmp_path / "ranks.png"
    status, _, err = run_search(index_dir, query, "--picture", picture, capsys=capsys)
    assert_one_line_error(status, err, str(data_dir), "--data_dir")
    assert not picture.exists()
    status, out, err = run_search(
        index_dir, query, "--picture", picture, "--data_dir", tmp_path / "market-moved", capsys=capsys
    )
    assert status == 0 and picture.is_file(), err
    assert f"path={tmp_path / 'market-moved'}" in out
    status, _, err = run_search(index_dir, query, "--data_dir", tmp_path / "nowhere", capsys=capsys)
    assert_one_line_error(status, err, "--data_dir", str(tmp_path / "nowhere"), "does not exist")


# ------------------------------------------------------------------------------------------- one line, nothing touched
def test_serve_on_a_taken_port_says_port_before_loading_anything(tmp_path, capsys):
    pytest.importorskip("gradio")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The index folder does not exist: the port is checked before the index or the model is read.
        status, _, err = run_cli("serve", "--index_dir", tmp_path / "no-index", "--port", port, capsys=capsys)
    line = assert_one_line_error(status, err, f"127.0.0.1:{port}", "--port")
    assert "no-index" not in line and "GRADIO_SERVER_PORT" not in err
    status, _, err = run_cli("serve", "--index_dir", tmp_path, "--port", "70000", capsys=capsys)
    assert status == 2 and "--port" in err


def test_search_picture_naming_a_folder_is_one_line_and_the_folder_is_untouched(tmp_path, capsys):
    folder = tmp_path / "pictures"
    folder.mkdir()
    (folder / "mine.png").write_bytes(b"png")
    before = tree(tmp_path)
    status, _, err = run_search(tmp_path / "index", tmp_path / "q.jpg", "--picture", folder, capsys=capsys)
    line = assert_one_line_error(status, err, f"--picture {folder} is a folder")
    assert "Errno" not in line and ".tmp" not in line
    assert tree(tmp_path) == before


def test_a_full_disk_during_index_is_one_line_and_the_index_survives(tiny_model_dir, market_dir, tmp_path, capsys):
    with small_tmpfs(tmp_path / "disk", 4 << 20) as disk:
        index_dir = disk / "index"
        assert run_index(tiny_model_dir, market_dir, index_dir, capsys=capsys)[0] == 0
        before, size = snapshot(index_dir), len(GalleryIndex.load(index_dir))
        with open(disk / "filler", "wb") as filler:  # fill the disk up
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError as error:
                assert error.errno == errno.ENOSPC
        status, _, err = run_index(tiny_model_dir, market_dir, index_dir, capsys=capsys)
        line = assert_one_line_error(status, err, f"cannot write the gallery index to {index_dir}", "No space left")
        assert "faiss" not in line.lower() and "Error in" not in line
        assert snapshot(index_dir) == before and len(GalleryIndex.load(index_dir)) == size
        assert sorted(os.listdir(disk)) == [".index.lock", "filler", "index"]  # no temporary copy left


def test_reading_an_index_leaves_no_lock_files(tiny_model_dir, data_template, tmp_path, capsys):
    index_dir = make_project(tmp_path / "project", tiny_model_dir, data_template)
    assert run_index(tmp_path / "project" / "model", tmp_path / "project" / "data", index_dir, capsys=capsys)[0] == 0
    (tmp_path / ".index.lock").unlink(missing_ok=True)
    (tmp_path / "project" / ".index.lock").unlink()  # the build's own write lock
    before = tree(tmp_path)
    query = a_query(tmp_path / "project")
    assert run_search(index_dir, query, capsys=capsys)[0] == 0
    for not_an_index in (tmp_path / "project" / "data", tmp_path / "project" / "missing"):
        status, _, err = run_search(not_an_index, query, capsys=capsys)
        assert_one_line_error(status, err, "No gallery index", str(not_an_index))
    pytest.importorskip("gradio")
    from hf_lareid.web.service import ReIDService

    assert len(ReIDService.load(index_dir).index) == len(GalleryIndex.load(index_dir))  # what `lareid serve` opens
    assert tree(tmp_path) == before
