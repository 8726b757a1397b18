"""`DatasetDict.push_to_hub` of a loaded set gets as far as the network, and what it would upload holds no local path."""

import pytest
from datasets.table import embed_table_storage
from huggingface_hub.errors import OfflineModeIsEnabled

from hf_lareid.data import load_reid_dataset


@pytest.mark.parametrize("name, fixture", [("market1501", "market_dir"), ("msmt17", "msmt17_dir")])
def test_push_fails_only_for_want_of_network(name, fixture, cache_dir, request):
    data = load_reid_dataset(name, data_dir=request.getfixturevalue(fixture), cache_dir=cache_dir)
    # Before: "All datasets in `DatasetDict` should have the same features" (only train had `label`).
    with pytest.raises(OfflineModeIsEnabled, match="offline mode is enabled"):
        data.push_to_hub("someone/reid-test")


def test_shared_rows_carry_no_absolute_path(market_dir, cache_dir):
    data = load_reid_dataset("market1501", data_dir=market_dir, cache_dir=cache_dir)
    for split in data.values():
        uploaded = embed_table_storage(split.data.table)  # what push_to_hub writes into the Parquet shards
        assert all(not path.startswith("/") for path in uploaded.column("path").to_pylist())
        images = uploaded.column("image").to_pylist()
        assert all(image["bytes"] and "/" not in image["path"] for image in images)  # bytes embedded, file name only
        assert str(market_dir) not in str(uploaded.to_pydict()["path"] + [image["path"] for image in images])
