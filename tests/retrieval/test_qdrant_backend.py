"""The Qdrant backend against qdrant-client's embedded mode (the server's API): FAISS-flat parity, the same-camera rule
as a database filter, removal by every selector (also after save/load), an injected clock, save/load and refusals."""

import json
import sys
from datetime import timedelta

import numpy as np
import pytest

pytest.importorskip("qdrant_client")

from fake_clock import START, FakeClock

from hf_lareid import Provenance
from hf_lareid.retrieval import GalleryIndex, search_other_cameras
from hf_lareid.retrieval.qdrant_index import QdrantGalleryIndex
from hf_lareid.utils.extras import MissingExtraError

NUM, DIM = 300, 16


def unit(num, seed):
    vectors = np.random.default_rng(seed).standard_normal((num, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def metadata(num):
    return dict(
        person_ids=np.arange(num) // 3, camera_ids=np.arange(num) % 4, paths=[f"img_{i}.jpg" for i in range(num)]
    )


def build_pair(tmp_path, clock=None):
    vectors = unit(NUM, 0)
    faiss_index = GalleryIndex(DIM)
    faiss_index.add(vectors, **metadata(NUM))
    qdrant_index = QdrantGalleryIndex(DIM, path=tmp_path / "store", clock=clock)
    qdrant_index.add(vectors[:100], **{name: values[:100] for name, values in metadata(NUM).items()})
    qdrant_index.add(vectors[100:], **{name: values[100:] for name, values in metadata(NUM).items()})
    return vectors, faiss_index, qdrant_index


def assert_same_hits(expected, actual):
    """Equal scores to 1e-5; hits whose scores tie within 1e-5 may come in either order."""
    np.testing.assert_allclose(actual.scores, expected.scores, atol=1e-5)
    for row in range(len(expected.scores)):
        for score in np.unique(np.round(expected.scores[row], 4)):
            tied_expected = np.abs(expected.scores[row] - score) < 1e-4
            tied_actual = np.abs(actual.scores[row] - score) < 1e-4
            if tied_expected.sum() == tied_actual.sum() == 1:
                assert expected.paths[row][tied_expected.argmax()] == actual.paths[row][tied_actual.argmax()]
        assert set(expected.paths[row][:-1]) <= set(actual.paths[row]) | set(expected.paths[row][-1:])
    for name in ("person_ids", "camera_ids"):
        paths = np.array(actual.paths)
        rows = np.vectorize(lambda p: int(p[4:-4]))(paths)
        np.testing.assert_array_equal(getattr(actual, name), metadata(NUM)[name][rows])


def test_top_k_equals_the_faiss_flat_index(tmp_path):
    vectors, faiss_index, qdrant_index = build_pair(tmp_path)
    queries = unit(12, 1)
    assert len(qdrant_index) == NUM
    assert_same_hits(faiss_index.search(queries, k=10), qdrant_index.search(queries, k=10))
    hits = qdrant_index.search(vectors[[5, 200]], k=1)  # a gallery vector finds itself, at its position
    np.testing.assert_array_equal(hits.indices[:, 0], [5, 200])
    assert hits.paths == [["img_5.jpg"], ["img_200.jpg"]]


def test_same_camera_exclusion_equals_faiss(tmp_path):
    vectors, faiss_index, qdrant_index = build_pair(tmp_path)
    queries = vectors[[0, 7, 50, 299]]
    cameras, people = [0, 3, 2, 3], [0, 2, -1, 99]  # the query's own person and camera; an unknown person
    expected = search_other_cameras(faiss_index, queries, 8, cameras, people)
    actual = search_other_cameras(qdrant_index, queries, 8, cameras, people)
    assert_same_hits(expected, actual)
    assert "img_0.jpg" not in actual.paths[0] and "img_7.jpg" not in actual.paths[1]
    assert (actual.camera_ids[2] != 2).all()  # person unknown: the whole camera is left out


def test_every_selector_removes_and_the_removed_are_never_returned_also_after_load(tmp_path):
    clock = FakeClock()
    vectors = unit(NUM, 0)
    index = QdrantGalleryIndex(DIM, path=tmp_path / "store", clock=clock)
    index.add(vectors[:150], **{name: values[:150] for name, values in metadata(NUM).items()})
    clock.now = START + timedelta(days=40)
    index.add(vectors[150:], **{name: values[150:] for name, values in metadata(NUM).items()})
    assert index.matching(older_than="30d").sum() == 150 and index.matching(older_than="45d").sum() == 0
    removed = {
        "person_ids": index.remove(person_ids=[0, 10]),  # img_0..2, img_30..32
        "paths": index.remove(paths=["img_200.jpg", "img_201.jpg"]),
        "camera_ids": index.remove(camera_ids=[3]),
    }
    assert removed == {"person_ids": 6, "paths": 2, "camera_ids": 74}
    clock.now = START + timedelta(days=75)
    assert index.remove(older_than="60d") == 150 - 6 - 36  # the first add, less what was already removed
    size = len(index)
    with pytest.raises(TypeError, match="camera"):
        index.remove(camera=[3])
    with pytest.raises(TypeError, match="person"):
        index.matching(person=[0])
    assert len(index) == size
    index.save(tmp_path / "index")
    loaded = GalleryIndex.load(tmp_path / "index")
    assert isinstance(loaded, QdrantGalleryIndex)
    for candidate in (index, loaded):
        kept = np.array([int(p[4:-4]) for p in candidate.paths])
        assert len(candidate) == len(kept) == NUM - 6 - 2 - 74 - 108
        assert (kept >= 150).all() and (candidate.camera_ids != 3).all() and 200 not in kept
        hits = candidate.search(vectors, k=5)
        returned = np.array([[int(p[4:-4]) for p in row] for row in hits.paths])
        assert np.isin(returned, kept).all()
        np.testing.assert_array_equal(np.array(candidate.paths)[hits.indices], np.array(hits.paths))
    np.testing.assert_array_equal(loaded.added_at, (START + timedelta(days=40)).timestamp())


def test_search_filters_by_time_in_the_database(tmp_path):
    clock = FakeClock()
    vectors = unit(40, 0)
    index = QdrantGalleryIndex(DIM, path=tmp_path / "store", clock=clock)
    index.add(vectors[:20], paths=[f"old_{i}" for i in range(20)])
    clock.now = START + timedelta(hours=2)
    index.add(vectors[20:], paths=[f"new_{i}" for i in range(20)])
    hits = index.search(vectors[:3], k=5, added_after="1h")
    assert all(path.startswith("new_") for row in hits.paths for path in row)


def test_save_load_round_trip_keeps_settings_and_never_writes_the_api_key(tmp_path, monkeypatch):
    monkeypatch.setenv("QDRANT_API_KEY", "secret-key-123")
    vectors = unit(30, 0)
    index = QdrantGalleryIndex.load_or_create(
        tmp_path / "index",
        DIM,
        model_reference="m",
        model_fingerprint="fp",
        verification_threshold=0.5,
        embedding_settings={"flip": False},
        collection_name="market",
    )
    assert (tmp_path / "index" / "gallery_config.json").is_file()  # an index folder from the start
    index.add(vectors, **metadata(30))
    index.save(tmp_path / "index")
    config_text = (tmp_path / "index" / "gallery_config.json").read_text()
    assert "secret-key-123" not in config_text
    config = json.loads(config_text)
    assert config["backend"] == "qdrant" and config["qdrant"] == {
        "path": "qdrant_storage",
        "url": None,
        "api_key_env": "QDRANT_API_KEY",
        "collection_name": "market",
    }
    loaded = GalleryIndex.load(tmp_path / "index")
    assert (loaded.model_fingerprint, loaded.verification_threshold, loaded.collection_name) == ("fp", 0.5, "market")
    assert loaded.paths == metadata(30)["paths"] and len(loaded) == 30
    np.testing.assert_array_equal(loaded.person_ids, metadata(30)["person_ids"])
    assert loaded.search(vectors[:2], k=3).same_person.shape == (2, 3)
    with pytest.raises(ValueError, match="fingerprint"):
        loaded.search(vectors[:1], provenance=Provenance(model_fingerprint="other"))
    resumed = QdrantGalleryIndex.load_or_create(tmp_path / "index", DIM, model_fingerprint="fp")
    assert resumed.add_batches([(vectors, metadata(30))], show_progress=False) == 0  # every path already indexed
    config["size"] = 31  # an edited config is refused
    (tmp_path / "index" / "gallery_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="checksum"):
        GalleryIndex.load(tmp_path / "index")


def test_refuses_a_folder_that_is_not_an_index(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"jpeg")
    index = QdrantGalleryIndex(DIM, path=tmp_path / "store")
    index.add(unit(5, 0))
    with pytest.raises(FileExistsError, match="not a gallery index"):
        index.save(photos)
    with pytest.raises(FileExistsError, match="not a gallery index"):
        QdrantGalleryIndex.load_or_create(photos, DIM)
    assert sorted(p.name for p in photos.iterdir()) == ["holiday.jpg"]


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "qdrant_client", None)
    with pytest.raises(MissingExtraError, match=r"'qdrant' extra"):
        QdrantGalleryIndex(DIM, path="unused")
