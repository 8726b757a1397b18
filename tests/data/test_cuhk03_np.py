"""CUHK03-np loader (767/700 protocol): labeled / detected variants in the Market-1501 layout."""

import pytest

from hf_lareid.data import ReIDDataError, load_reid_dataset


def test_labeled_by_default_and_detected_by_option(cuhk03_np_dir, cache_dir):
    labeled = load_reid_dataset("cuhk03_np", data_dir=cuhk03_np_dir, cache_dir=cache_dir)
    detected = load_reid_dataset("cuhk03_np", data_dir=cuhk03_np_dir, variant="detected", cache_dir=cache_dir)
    assert [labeled[split].num_rows for split in labeled] == [12, 4, 8]
    assert [detected[split].num_rows for split in detected] == [11, 3, 7]
    assert labeled["train"].features["label"].names == ["1", "2", "3"]
    assert sorted(set(labeled["gallery"]["camera_id"])) == [1, 2]
    assert all(path.startswith("labeled/query/") for path in labeled["query"]["path"])
    assert all(path.startswith("detected/query/") for path in detected["query"]["path"])
    assert labeled["query"][0]["path"].endswith("_c1_6.png")


def test_data_dir_may_be_a_variant_folder_or_the_parent(cuhk03_np_dir, cache_dir):
    direct = load_reid_dataset("cuhk03_np", data_dir=cuhk03_np_dir / "detected", cache_dir=cache_dir)
    assert direct["train"].num_rows == 11 and direct["query"]["path"][0].startswith("query/")
    parent = load_reid_dataset("cuhk03_np", data_dir=cuhk03_np_dir.parent, splits=["query"], cache_dir=cache_dir)
    assert parent["query"]["path"][0].startswith("cuhk03-np/labeled/query/")
    assert (cuhk03_np_dir.parent / parent["query"]["path"][0]).is_file()


def test_bad_variant_and_layout_errors(cuhk03_np_dir, cache_dir, tmp_path, image_writer):
    with pytest.raises(ValueError, match=r"variant='hand' is not one of \('labeled', 'detected'\)"):
        load_reid_dataset("cuhk03_np", data_dir=cuhk03_np_dir, variant="hand", cache_dir=cache_dir)
    with pytest.raises(ValueError, match=r"one CUHK03-np variant folder \('detected'\).*variant='labeled'"):
        load_reid_dataset("cuhk03_np", data_dir=cuhk03_np_dir / "detected", variant="labeled", cache_dir=cache_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        FileNotFoundError, match=r"CUHK03-np sub-folder 'labeled'.*does not exist.*labeled/ and detected/"
    ):
        load_reid_dataset("cuhk03_np", data_dir=tmp_path / "empty", cache_dir=cache_dir)
    image_writer(cuhk03_np_dir / "labeled" / "query" / "0007_c1s1_000451_03.jpg")
    with pytest.raises(ReIDDataError, match=r"0007_c1s1_000451_03\.jpg .*CUHK03-np pattern PPPP_cC_N\.png"):
        load_reid_dataset("cuhk03_np", data_dir=cuhk03_np_dir, cache_dir=cache_dir)
