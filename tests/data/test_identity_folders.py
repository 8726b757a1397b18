"""Folder-per-person loader: names, cameras from paths, id split and query rules."""

import pytest

from hf_lareid.data import ReIDDataError, load_reid_dataset
from hf_lareid.data.file_names import parse_camera_id


def test_parse_camera_id():
    assert parse_camera_id("0002_c1s1_000451_03.jpg") == 1
    assert parse_camera_id("cam2/angle3.jpg") == 2
    assert parse_camera_id("front_camera-3.png") == 3
    assert parse_camera_id("Cam_4_x.png") == 4
    assert parse_camera_id("abc1.jpg") == -1
    assert parse_camera_id("catalog.jpg") == -1


def test_named_folders_nested_cameras(person_folders_factory, cache_dir):
    root = person_folders_factory(["alice", "bob", "carol", "dave"], ["cam1/x.jpg", "cam1/y.jpg", "cam2/z.jpg"])
    data = load_reid_dataset("identity_folders", data_dir=root, train_ids=[1, 2], cache_dir=cache_dir)
    assert list(data) == ["train", "query", "gallery"]
    assert data["train"].features["label"].names == ["alice", "bob"]
    assert set(data["train"]["camera_id"]) == {1, 2}
    assert set(data["query"]["person_id"]) == {3, 4}  # carol, dave numbered in sorted order
    assert set(data["query"]["camera_id"]) == {1} and set(data["gallery"]["camera_id"]) == {2}


def test_default_half_split_and_evaluation_only(person_folders_factory, cache_dir):
    root = person_folders_factory([str(i) for i in range(10, 20)], ["a.jpg", "b.jpg"])
    data = load_reid_dataset("identity_folders", data_dir=root, cache_dir=cache_dir)
    assert len(set(data["train"]["person_id"])) == 5 and len(set(data["query"]["person_id"])) == 5
    evaluation = load_reid_dataset("identity_folders", data_dir=root, num_train_ids=0, cache_dir=cache_dir)
    assert list(evaluation) == ["query", "gallery"] and len(set(evaluation["query"]["person_id"])) == 10
    with pytest.raises(ReIDDataError, match="Split 'train'.*holds no images"):
        load_reid_dataset("identity_folders", data_dir=root, num_train_ids=0, splits=["train"], cache_dir=cache_dir)


def test_camera_rule_needs_cameras(person_folders_factory, cache_dir):
    root = person_folders_factory(["1", "2"], ["a.jpg", "b.jpg"])
    with pytest.raises(ReIDDataError, match="query_rule='camera'.*alternate"):
        load_reid_dataset("identity_folders", data_dir=root, num_train_ids=0, query_rule="camera", cache_dir=cache_dir)
    with pytest.raises(ValueError, match="query_rule='sideways'"):
        load_reid_dataset("identity_folders", data_dir=root, query_rule="sideways", cache_dir=cache_dir)


def test_missing_or_flat_folder(tmp_path, image_writer, cache_dir):
    with pytest.raises(FileNotFoundError, match="Identity folder .*does not exist"):
        load_reid_dataset("identity_folders", data_dir=tmp_path / "none", cache_dir=cache_dir)
    image_writer(tmp_path / "flat" / "a.jpg")
    with pytest.raises(ReIDDataError, match="no person sub-folders"):
        load_reid_dataset("identity_folders", data_dir=tmp_path / "flat", cache_dir=cache_dir)


def test_explicit_ids_leave_no_id_without_a_group(person_folders_factory, cache_dir):
    root = person_folders_factory([str(i) for i in range(1, 11)], ["a.jpg", "b.jpg"])
    with pytest.raises(ReIDDataError, match=r"7 person id\(s\) fall in no group: \[4, 5, 6, 7, 8, 9, 10\]"):
        load_reid_dataset("identity_folders", data_dir=root, train_ids=[1, 2], test_ids=[3], cache_dir=cache_dir)
    with pytest.raises(ReIDDataError, match=r"2 person id\(s\) fall in no group.*num_train_ids"):
        load_reid_dataset("identity_folders", data_dir=root, test_ids=[8, 9, 10], cache_dir=cache_dir)  # 5 + 3 of 10
    data = load_reid_dataset(
        "identity_folders", data_dir=root, test_ids=[8, 9, 10], num_train_ids=7, cache_dir=cache_dir
    )
    assert set(data["train"]["person_id"]) == set(range(1, 8)) and set(data["query"]["person_id"]) == {8, 9, 10}
