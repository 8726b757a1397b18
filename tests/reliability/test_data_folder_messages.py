"""Data folders and query paths that are not what a command expects get one line naming the file and the fix:
symbolic link loops, links to nothing, line breaks in file names, a folder given as a query image."""

from __future__ import annotations

import os

import pytest
from cli_helpers import assert_one_line_error, run_evaluate, run_index, run_search, tiny_market

from hf_lareid.data import ReIDDataError, load_reid_dataset


@pytest.fixture
def small_market(tmp_path):
    return tiny_market(tmp_path / "market", num_ids=4, num_cameras=2)


def test_a_symbolic_link_loop_in_a_data_folder_is_named(tiny_model_dir, small_market, capsys):
    link = small_market / "bounding_box_test" / "0009_c1s1_000001_00.jpg"
    os.symlink(link.name, link)  # a link to itself
    status, _, err = run_evaluate(tiny_model_dir, small_market, capsys=capsys)
    line = assert_one_line_error(status, err, str(link), "symbolic link loop", "remove the link")
    assert "Errno" not in line


def test_a_link_to_nothing_in_a_data_folder_is_named(small_market, tmp_path):
    link = small_market / "query" / "0009_c1s1_000001_00.jpg"
    os.symlink(tmp_path / "gone.jpg", link)
    with pytest.raises(ReIDDataError) as error:
        load_reid_dataset("market1501", small_market, cache_dir=tmp_path / "cache")
    message = str(error.value)
    assert str(link) in message and "gone.jpg, which does not exist" in message and "remove the link" in message
    assert "\n" not in message


def test_a_line_break_in_a_market_file_name_is_refused(small_market, tmp_path):
    image = next((small_market / "query").iterdir())
    renamed = image.with_name(image.stem + "\n" + image.suffix)
    image.rename(renamed)
    with pytest.raises(ReIDDataError) as error:
        load_reid_dataset("market1501", small_market, cache_dir=tmp_path / "cache")
    message = str(error.value)
    assert "\n" not in message and repr(str(renamed)) in message and "line break" in message


def test_a_query_that_is_a_folder_is_said_to_be_one(tiny_model_dir, small_market, tmp_path, capsys):
    index_dir = tmp_path / "index"
    status, _, err = run_index(tiny_model_dir, small_market, index_dir, capsys=capsys)
    assert status == 0, err
    status, _, err = run_search(index_dir, small_market / "query", capsys=capsys)
    assert_one_line_error(status, err, "is a folder", "pass image files")
