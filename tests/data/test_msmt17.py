"""MSMT17 loader: list files of `relative/path label` lines over train/ and test/ image folders."""

import pytest

from hf_lareid.data import ReIDDataError, load_reid_dataset
from hf_lareid.data.msmt17 import parse_msmt17_camera


def test_val_joins_train_by_default(msmt17_dir, cache_dir):
    data = load_reid_dataset("msmt17", data_dir=msmt17_dir, cache_dir=cache_dir)
    assert list(data) == ["train", "query", "gallery"]
    assert [data[split].num_rows for split in data] == [12 + 3, 4, 8]
    assert data["train"].features["label"].names == ["0", "1", "2"]
    assert sorted(set(data["train"]["camera_id"])) == [1, 3]  # the third `_` field of the file name
    assert sorted(set(data["query"]["camera_id"])) == [2, 7]
    assert data["train"]["path"][0] == "train/0000/0000_001_01_0303morning_0001_0.jpg"
    assert data["query"]["path"][0].startswith("test/0000/")
    assert all((msmt17_dir / path).is_file() for path in data["gallery"]["path"])
    assert data["train"].features == data["query"].features


def test_val_as_its_own_split_keeps_the_training_labels(msmt17_dir, cache_dir):
    data = load_reid_dataset("msmt17", data_dir=msmt17_dir, separate_val=True, cache_dir=cache_dir)
    assert list(data) == ["train", "val", "query", "gallery"]
    assert data["train"].num_rows == 12 and data["val"].num_rows == 3
    names = data["train"].features["label"].names
    assert [names[row["label"]] for row in data["val"]] == [str(row["person_id"]) for row in data["val"]]
    assert set(data["query"]["label"]) == {-1}  # test ids are numbered apart from train: never labelled
    with pytest.raises(ValueError, match=r"Unknown MSMT17 split\(s\) \['val'\].*separate_val=True"):
        load_reid_dataset("msmt17", data_dir=msmt17_dir, splits=["val"], cache_dir=cache_dir)


def test_v2_folder_names_are_read(msmt17_dir, cache_dir):
    (msmt17_dir / "train").rename(msmt17_dir / "mask_train_v2")
    (msmt17_dir / "test").rename(msmt17_dir / "mask_test_v2")
    data = load_reid_dataset("msmt17", data_dir=msmt17_dir, splits=["train", "query"], cache_dir=cache_dir)
    assert data["train"].num_rows == 15 and data["query"]["path"][0].startswith("mask_test_v2/")


def test_a_changed_list_file_rebuilds(msmt17_dir, cache_dir):
    first = load_reid_dataset("msmt17", data_dir=msmt17_dir, splits=["query"], cache_dir=cache_dir)["query"]
    list_file = msmt17_dir / "list_query.txt"
    list_file.write_text("\n".join(list_file.read_text().splitlines()[:2]) + "\n")
    second = load_reid_dataset("msmt17", data_dir=msmt17_dir, splits=["query"], cache_dir=cache_dir)["query"]
    assert (first.num_rows, second.num_rows) == (4, 2)


def test_bad_layouts_are_named(msmt17_dir, cache_dir):
    def load():
        return load_reid_dataset("msmt17", data_dir=msmt17_dir, cache_dir=cache_dir)

    gallery = msmt17_dir / "list_gallery.txt"
    lines = gallery.read_text().splitlines()
    gallery.write_text("\n".join([lines[0], "0001/missing.jpg"] + lines[1:]) + "\n")
    with pytest.raises(
        ReIDDataError, match=r"list_gallery\.txt line 2 reads '0001/missing\.jpg', not 'relative/path label'"
    ):
        load()
    gallery.write_text("\n".join([lines[0], "0001/0001_999_02_0303morning_0999_0.jpg 1"] + lines[1:]) + "\n")
    with pytest.raises(ReIDDataError, match=r"list_gallery\.txt line 2 names 0001/0001_999_02.*not an image in .*test"):
        load()
    gallery.unlink()
    with pytest.raises(FileNotFoundError, match=r"list_gallery\.txt does not exist.*splits="):
        load()
    (msmt17_dir / "test").rename(msmt17_dir / "testing")
    with pytest.raises(FileNotFoundError, match=r"MSMT17 image folder \(test or mask_test_v2\).*does not exist"):
        load()


def test_parse_msmt17_camera():
    assert parse_msmt17_camera("0000_000_01_0303morning_0015_0.jpg") == 1
    assert parse_msmt17_camera("x/1040_042_15_0113noon_0999_2.jpg") == 15
    with pytest.raises(ReIDDataError, match=r"holiday\.jpg .*MSMT17 pattern"):
        parse_msmt17_camera("holiday.jpg")


def test_a_list_file_that_is_not_text_is_named(msmt17_dir, cache_dir):
    (msmt17_dir / "list_query.txt").write_bytes(b"\xff\xfe\x00junk")
    with pytest.raises(ReIDDataError, match=r"list_query\.txt is not UTF-8 text .*: restore the file"):
        load_reid_dataset("msmt17", data_dir=msmt17_dir, cache_dir=cache_dir)
