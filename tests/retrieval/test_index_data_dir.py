"""GalleryIndex records the data folder its relative paths belong to and resolves them against it."""

import os

import numpy as np
import pytest

from hf_lareid.retrieval import GalleryIndex


def _unit(num, dim=8):
    vectors = np.random.default_rng(0).normal(size=(num, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_data_dir_round_trips_and_resolves_relative_paths(tmp_path):
    data_dir = tmp_path / "Market"
    index = GalleryIndex(8, data_dir=str(data_dir))
    index.add(_unit(3), paths=["bounding_box_test/a.jpg", "/elsewhere/b.jpg", ""])
    index.save(tmp_path / "index")
    loaded = GalleryIndex.load(tmp_path / "index")
    assert loaded.data_dir == str(data_dir)
    assert loaded.paths == ["bounding_box_test/a.jpg", "/elsewhere/b.jpg", ""]  # stored as given
    assert [loaded.resolve_path(path) for path in loaded.paths] == [
        os.path.join(data_dir, "bounding_box_test/a.jpg"),
        "/elsewhere/b.jpg",
        "",  # absolute and unknown unchanged
    ]
    assert GalleryIndex(8).resolve_path("query/x.jpg") == "query/x.jpg"  # no data_dir: as stored


def test_resuming_with_another_data_folder_is_refused(tmp_path):
    index = GalleryIndex(8, data_dir=str(tmp_path / "Market"))
    index.add(_unit(2), paths=["query/a.jpg", "query/b.jpg"])
    index.save(tmp_path / "index")
    resumed = GalleryIndex.load_or_create(tmp_path / "index", 8, data_dir=str(tmp_path / "Market"))
    assert len(resumed) == 2
    with pytest.raises(ValueError, match=r"holds images of .*Market, not .*Duke: its paths are relative"):
        GalleryIndex.load_or_create(tmp_path / "index", 8, data_dir=str(tmp_path / "Duke"))


def test_an_index_without_data_dir_adopts_the_one_given_on_resume(tmp_path):
    old = GalleryIndex(8)
    old.add(_unit(1), paths=["query/a.jpg"])
    old.save(tmp_path / "index")
    resumed = GalleryIndex.load_or_create(tmp_path / "index", 8, data_dir=str(tmp_path / "Market"))
    assert resumed.resolve_path("query/a.jpg") == os.path.join(tmp_path / "Market", "query/a.jpg")


def test_the_dataset_name_round_trips_and_an_index_without_one_adopts_it_on_resume(tmp_path):
    index = GalleryIndex(8, data_dir=str(tmp_path / "Duke"), dataset="dukemtmcreid")
    index.add(_unit(2), paths=["query/a.jpg", "query/b.jpg"])
    index.save(tmp_path / "duke-index")
    assert GalleryIndex.load(tmp_path / "duke-index").dataset == "dukemtmcreid"
    older = GalleryIndex(8)  # saved before the dataset was recorded
    older.add(_unit(2), paths=["query/a.jpg", "query/b.jpg"])
    older.save(tmp_path / "old-index")
    assert GalleryIndex.load(tmp_path / "old-index").dataset is None
    assert GalleryIndex.load_or_create(tmp_path / "old-index", 8, dataset="msmt17").dataset == "msmt17"
