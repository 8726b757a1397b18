"""Market-1501 loader: splits, ids, junk handling, bad input and the folder-aware cache."""

import logging
import os
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

import hf_lareid.data.builder as builder_module
from hf_lareid.data import ReIDDataError, load_reid_dataset, parse_market1501_name


def test_parse_market1501_name():
    assert parse_market1501_name("0002_c1s1_000451_03.jpg") == (2, 1)
    assert parse_market1501_name("-1_c3s2_000401_03.jpg") == (-1, 3)
    assert parse_market1501_name("0000_c6s4_002352_01.jpg") == (0, 6)
    with pytest.raises(ReIDDataError, match=r"holiday\.jpg.*PPPP_cCsS_FFFFFF_NN"):
        parse_market1501_name("/x/holiday.jpg")


def test_loads_splits_columns_and_labels(market_dir, cache_dir):
    data = load_reid_dataset("market1501", data_dir=market_dir, cache_dir=cache_dir)
    assert list(data) == ["train", "query", "gallery"]
    assert [data[split].num_rows for split in data] == [16, 6, 14]
    assert data["train"].column_names == ["image", "person_id", "camera_id", "path", "label"]
    # Every split has the same features (push_to_hub needs it); evaluation splits hold label -1.
    assert data["query"].features == data["gallery"].features == data["train"].features
    assert set(data["query"]["label"]) == set(data["gallery"]["label"]) == {-1}
    label_feature = data["train"].features["label"]
    assert isinstance(label_feature, datasets.ClassLabel)
    assert label_feature.names == ["2", "7", "10", "11"]
    assert sorted(set(data["train"]["label"])) == [0, 1, 2, 3]
    for row in data["train"]:
        assert label_feature.names[row["label"]] == str(row["person_id"])
        assert os.path.basename(row["path"]).startswith(f"{row['person_id']:04d}_c{row['camera_id']}")
        assert row["path"].startswith("bounding_box_train/")  # relative to data_dir
        assert (market_dir / row["path"]).is_file()
    # The gallery keeps junk (-1) and distractors (0); Thumbs.db is skipped.
    assert {-1, 0} <= set(data["gallery"]["person_id"])
    assert sorted(set(data["query"]["camera_id"])) == [1, 2]
    image = data["query"][0]["image"]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (8, 16)


def test_pick_splits_and_person_ids(market_dir, cache_dir):
    data = load_reid_dataset(
        "market1501", data_dir=market_dir, splits=["train", "gallery"], person_ids=[7, 11, 3], cache_dir=cache_dir
    )
    assert list(data) == ["train", "gallery"]
    assert set(data["train"]["person_id"]) == {7, 11}
    assert data["train"].features["label"].names == ["7", "11"]
    assert set(data["gallery"]["person_id"]) == {3, 0, -1}
    # Each id list gets its own cache entry (numpy arrays included).
    for ids in (np.array([2, 7]), np.array([2, 10])):
        data = load_reid_dataset("market1501", market_dir, splits=["train"], person_ids=ids, cache_dir=cache_dir)
        assert set(data["train"]["person_id"]) == set(ids.tolist())


def test_missing_folder_and_subfolder(market_dir, cache_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_reid_dataset("market1501", data_dir=tmp_path / "nowhere", cache_dir=cache_dir)
    shutil.rmtree(market_dir / "query")
    with pytest.raises(FileNotFoundError, match=r"query.*does not exist.*splits="):
        load_reid_dataset("market1501", data_dir=market_dir, cache_dir=cache_dir)
    # Without the query split the rest still loads.
    data = load_reid_dataset("market1501", data_dir=market_dir, splits=["train", "gallery"], cache_dir=cache_dir)
    assert list(data) == ["train", "gallery"]


def test_unparsable_name_is_named(market_dir, cache_dir, image_writer):
    image_writer(market_dir / "query" / "holiday.jpg")
    with pytest.raises(ReIDDataError, match="holiday.jpg"):
        load_reid_dataset("market1501", data_dir=market_dir, cache_dir=cache_dir)


def test_unknown_split_and_option(market_dir, cache_dir):
    with pytest.raises(ValueError, match="Unknown Market-1501 split"):
        load_reid_dataset("market1501", data_dir=market_dir, splits=["test"], cache_dir=cache_dir)
    with pytest.raises(TypeError, match="Unknown option"):
        load_reid_dataset("market1501", data_dir=market_dir, num_ids=3, cache_dir=cache_dir)
    with pytest.raises(ValueError, match="Unknown re-ID dataset"):
        load_reid_dataset("cuhk03", data_dir=market_dir, cache_dir=cache_dir)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_image_is_named(market_dir, cache_dir, damage):
    path = market_dir / "bounding_box_train" / "0007_c2s1_000025_02.jpg"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\xff\xd8 not a jpeg at all")
    with pytest.raises(ReIDDataError, match=r"0007_c2s1_000025_02\.jpg.*corrupt or truncated.*Replace it"):
        load_reid_dataset("market1501", data_dir=market_dir, cache_dir=cache_dir)


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P"])
def test_non_rgb_images_decode_as_rgb(market_dir, cache_dir, image_writer, mode):
    suffix = ".jpg" if mode in ("L", "CMYK") else ".png"
    image_writer(market_dir / "query" / f"0003_c1s1_000999_09{suffix}", seed=5, mode=mode)
    data = load_reid_dataset("market1501", data_dir=market_dir, splits=["query"], cache_dir=cache_dir)
    row = next(row for row in data["query"] if row["path"].endswith(f"_09{suffix}"))
    assert Image.open(market_dir / row["path"]).mode == mode
    assert row["image"].mode == "RGB" and row["image"].size == (8, 16)


def test_empty_split_is_an_error(market_dir, cache_dir):
    for path in (market_dir / "query").iterdir():
        path.unlink()
    with pytest.raises(ReIDDataError, match=r"Split 'query' of .*query holds no images"):
        load_reid_dataset("market1501", data_dir=market_dir, cache_dir=cache_dir)


def test_query_without_gallery_match_warns(market_dir, cache_dir, image_writer, caplog):
    image_writer(market_dir / "query" / "0042_c1s1_000001_01.jpg")
    with caplog.at_level(logging.WARNING, logger="hf_lareid.data"):
        data = load_reid_dataset("market1501", data_dir=market_dir, cache_dir=cache_dir)
    assert 42 in data["query"]["person_id"]
    assert "0042_c1s1_000001_01.jpg" in caplog.text and "evaluation skips them" in caplog.text


def _count_checks(monkeypatch):
    calls = []
    original = builder_module.check_image
    monkeypatch.setattr(builder_module, "check_image", lambda path: calls.append(path) or original(path))
    return calls


def test_second_load_comes_from_cache(market_dir, cache_dir, monkeypatch):
    calls = _count_checks(monkeypatch)
    first = load_reid_dataset("market1501", data_dir=market_dir, cache_dir=cache_dir)
    assert len(calls) == 36  # every image decoded once, during the build
    second = load_reid_dataset("market1501", data_dir=market_dir, cache_dir=cache_dir)
    assert len(calls) == 36  # nothing checked or written again
    assert second["train"].cache_files == first["train"].cache_files
    assert str(cache_dir) in first["train"].cache_files[0]["filename"]


def test_cache_sees_added_removed_replaced_images(market_dir, cache_dir, image_writer, monkeypatch):
    def load():
        return load_reid_dataset("market1501", data_dir=market_dir, splits=["train"], cache_dir=cache_dir)["train"]

    assert load().num_rows == 16
    added = image_writer(market_dir / "bounding_box_train" / "0099_c1s1_000001_01.jpg", seed=99)
    train = load()
    assert train.num_rows == 17 and 99 in train["person_id"]

    added.unlink()
    original = load()
    assert original.num_rows == 16
    assert load().cache_files == original.cache_files  # unchanged folder: same build

    # Rows store only the path and images decode lazily from disk, so the pixels alone cannot show a rebuild:
    # check that the replaced image made a new build (new Arrow files, every image checked again).
    target = market_dir / "bounding_box_train" / "0002_c1s1_000000_01.jpg"
    image_writer(target, seed=1234, size=(20, 10))
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    calls = _count_checks(monkeypatch)
    replaced = load()
    assert len(calls) == 16  # a fresh build decodes every image once, the replaced one included
    assert str(target) in calls
    old_files = {entry["filename"] for entry in original.cache_files}
    new_files = {entry["filename"] for entry in replaced.cache_files}
    assert new_files and not new_files & old_files
    assert {Path(name).parent for name in new_files}.isdisjoint(Path(name).parent for name in old_files)
    assert replaced[0]["image"].size == (10, 20)


def test_cache_sees_moved_folder(market_dir, cache_dir, tmp_path):
    load_reid_dataset("market1501", data_dir=market_dir, splits=["query"], cache_dir=cache_dir)
    moved = tmp_path / "moved" / "Market"
    moved.parent.mkdir()
    shutil.move(market_dir, moved)
    query = load_reid_dataset("market1501", data_dir=moved, splits=["query"], cache_dir=cache_dir)["query"]
    assert all((moved / path).is_file() for path in query["path"])  # relative paths stay valid
    assert query.with_format("arrow")["image"][0]["path"].as_py().startswith(str(moved))
    assert query[0]["image"].size == (8, 16)  # decodes from the new location
