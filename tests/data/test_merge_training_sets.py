"""merge_training_sets: disjoint label ranges with readable names."""

import pytest

from hf_lareid.data import load_reid_dataset, merge_training_sets


def test_merge_gives_disjoint_labels(market_dir, person_folders_factory, cache_dir):
    market = load_reid_dataset("market1501", data_dir=market_dir, splits=["train"], cache_dir=cache_dir)["train"]
    people_dir = person_folders_factory(["001", "002", "003"], ["a.jpg", "b.jpg"])
    people = load_reid_dataset("identity_folders", data_dir=people_dir, num_train_ids=3, cache_dir=cache_dir)["train"]
    merged = merge_training_sets([market, people], names=["market", "people"])
    assert merged.num_rows == market.num_rows + people.num_rows
    names = merged.features["label"].names
    assert names == ["market/2", "market/7", "market/10", "market/11", "people/001", "people/002", "people/003"]
    assert merged["label"][: market.num_rows] == market["label"]
    assert merged["label"][market.num_rows :] == [label + 4 for label in people["label"]]
    for row in merged:
        assert names[row["label"]].endswith(f"/{row['person_id']}") or names[row["label"]].endswith(
            f"/{row['person_id']:03d}"
        )
    assert merged[0]["image"].mode == "RGB"


def test_merge_needs_training_splits(market_dir, cache_dir):
    query = load_reid_dataset("market1501", data_dir=market_dir, splits=["query"], cache_dir=cache_dir)["query"]
    with pytest.raises(ValueError, match="label -1 .*pass the 'train' split"):
        merge_training_sets([query])
    with pytest.raises(ValueError, match="no ClassLabel column 'label'"):
        merge_training_sets([query.remove_columns("label")])
    with pytest.raises(ValueError, match="at least one"):
        merge_training_sets([])
