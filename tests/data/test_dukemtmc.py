"""DukeMTMC-reID loader: the Market-1501 layout with Duke's file names."""

import re

import pytest

from hf_lareid.data import ReIDDataError, load_reid_dataset


def test_loads_splits_ids_cameras_and_relative_paths(duke_dir, cache_dir):
    data = load_reid_dataset("dukemtmcreid", data_dir=duke_dir, cache_dir=cache_dir)
    assert list(data) == ["train", "query", "gallery"]
    assert [data[split].num_rows for split in data] == [12, 4, 8]
    assert data["train"].features["label"].names == ["1", "4", "9"]
    assert data["train"].features == data["query"].features == data["gallery"].features
    assert sorted(set(data["query"]["camera_id"])) == [1, 5]
    for row in data["gallery"]:
        assert re.fullmatch(rf"bounding_box_test/{row['person_id']:04d}_c{row['camera_id']}_f\d{{7}}\.jpg", row["path"])
        assert (duke_dir / row["path"]).is_file() and row["label"] == -1


def test_a_market_name_in_a_duke_folder_is_named(duke_dir, cache_dir, image_writer):
    image_writer(duke_dir / "query" / "0003_c1s1_000451_03.jpg")
    with pytest.raises(ReIDDataError, match=r"0003_c1s1_000451_03\.jpg .*DukeMTMC-reID pattern PPPP_cC_fFFFFFFF\.jpg"):
        load_reid_dataset("dukemtmcreid", data_dir=duke_dir, cache_dir=cache_dir)


def test_missing_subfolder_names_it(duke_dir, cache_dir):
    (duke_dir / "query").rename(duke_dir / "queries")
    with pytest.raises(FileNotFoundError, match=r"DukeMTMC-reID sub-folder for split 'query'.*does not exist.*splits="):
        load_reid_dataset("dukemtmcreid", data_dir=duke_dir, cache_dir=cache_dir)
