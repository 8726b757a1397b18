"""GalleryIndex.remove for every index type (in memory, after save/load, after a resumed build), added_at with an
injected clock, `lareid index --remove / --verify`, the compressed `ivfpq_refine` type's recall, mmap loading and the
load-time verification policy."""

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from fake_clock import START, FakeClock

from hf_lareid.cli.main import main
from hf_lareid.retrieval import CorruptIndexError, GalleryIndex
from hf_lareid.retrieval.retention import parse_older_than


def clustered(num, dim=32, clusters=40, noise=0.35, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim)).astype(np.float32)
    vectors = centers[rng.integers(0, clusters, num)] + noise * rng.standard_normal((num, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


TYPES = {
    "flat": {},
    "ivf": dict(nlist=8, nprobe=8),
    "ivfpq": dict(nlist=8, nprobe=8, pq_m=8, pq_bits=4),
    "ivfpq_refine": dict(nlist=8, refine="Flat"),
    "hnsw": dict(ef_search=200),
}


def build(index_type, vectors, clock=None):
    index = GalleryIndex(vectors.shape[1], index_type, clock=clock, **TYPES[index_type])
    num = len(vectors)
    index.add(
        vectors,
        person_ids=np.arange(num) // 4,
        camera_ids=np.arange(num) % 3,
        paths=[f"img_{i}.jpg" for i in range(num)],
    )
    return index


def assert_hits_are_kept_entries(index, vectors, removed_paths, queries):
    """No hit is a removed entry, and each hit's metadata belongs to the vector it scored."""
    hits = index.search(queries, k=20)
    returned = {path for row in hits.paths for path in row}
    assert not returned & set(removed_paths)
    rows = np.array([[int(path[4:-4]) for path in row] for row in hits.paths])
    np.testing.assert_array_equal(hits.person_ids, rows // 4)
    exact = np.einsum("qd,qkd->qk", queries, vectors[rows])
    # quantised scores: close to the exact score of the vector the metadata names (plain 4-bit PQ is coarse)
    np.testing.assert_allclose(hits.scores, exact, atol=0.3 if index.index_type == "ivfpq" else 0.05)


@pytest.mark.parametrize("index_type", list(TYPES))
def test_removed_entries_are_never_returned_in_memory_after_load_and_after_adding(index_type, tmp_path):
    vectors = clustered(600)
    index = build(index_type, vectors)
    removed_people = [0, 5, 17, 60]
    removed_paths = [f"img_{i}.jpg" for i in range(600) if i // 4 in removed_people]
    queries = vectors[[0, 1, 20, 68, 240, 300, 599]]
    before = index.search(queries, k=20)
    assert {path for row in before.paths for path in row} & set(removed_paths)  # found before the removal

    assert index.remove(person_ids=removed_people) == 16
    assert len(index) == 584 and len(index.paths) == 584 and len(index.added_at) == 584
    assert not set(index.paths) & set(removed_paths)
    assert not index.indexed_paths & set(removed_paths)
    assert_hits_are_kept_entries(index, vectors, removed_paths, queries)

    index.save(tmp_path / "idx")
    config = json.loads((tmp_path / "idx" / "gallery_config.json").read_text())
    assert config["size"] == 584
    loaded = GalleryIndex.load(tmp_path / "idx", verify=True)  # the rewritten checksums match
    assert_hits_are_kept_entries(loaded, vectors, removed_paths, queries)

    # positions stay consistent: entries added after a removal are found with their own metadata
    extra = clustered(5, seed=9)
    loaded.add(extra, person_ids=[900] * 5, camera_ids=[1] * 5, paths=[f"new_{i}.jpg" for i in range(5)])
    hits = loaded.search(extra, k=1)
    assert [row[0] for row in hits.paths] == [f"new_{i}.jpg" for i in range(5)]
    assert (hits.person_ids[:, 0] == 900).all()
    assert loaded.remove(paths=["new_2.jpg"]) == 1 and "new_2.jpg" not in loaded.paths


def test_flat_removal_equals_an_index_built_without_the_entries():
    vectors = clustered(300)
    index = build("flat", vectors)
    index.remove(camera_ids=[1])
    keep = np.arange(300) % 3 != 1
    fresh = GalleryIndex(32)
    fresh.add(vectors[keep])
    queries = clustered(6, seed=4)
    np.testing.assert_array_equal(index.search(queries, k=10).indices, fresh.search(queries, k=10).indices)
    assert set(index.camera_ids.tolist()) == {0, 2}


def test_criteria_combine_and_older_than_uses_the_injected_clock(tmp_path):
    clock = FakeClock()
    vectors = clustered(40)
    index = GalleryIndex(32, clock=clock)
    index.add(
        vectors[:20], person_ids=np.arange(20) % 5, camera_ids=np.zeros(20, int), paths=[f"a{i}" for i in range(20)]
    )
    clock.now = START + timedelta(days=10)
    index.add(
        vectors[20:], person_ids=np.arange(20) % 5, camera_ids=np.ones(20, int), paths=[f"b{i}" for i in range(20)]
    )
    np.testing.assert_array_equal(index.added_at, [START.timestamp()] * 20 + [clock.now.timestamp()] * 20)
    index.save(tmp_path / "idx")
    index = GalleryIndex.load(tmp_path / "idx")
    index.clock = clock
    np.testing.assert_array_equal(index.added_at[:20], START.timestamp())  # recorded on disk

    clock.now = START + timedelta(days=35)
    assert index.remove(older_than="30d", person_ids=[1]) == 4  # every criterion must match
    assert index.remove(older_than="30d") == 16
    assert index.remove(older_than="2026-01-10T00:00:00Z") == 0  # the rest were added on 2026-01-11
    assert index.remove(older_than=datetime(2026, 1, 11, 0, 0, 1)) == 20  # no zone = UTC
    assert len(index) == 0
    with pytest.raises(ValueError, match="Say what to remove"):
        index.remove()
    with pytest.raises(ValueError, match="neither an ISO 8601"):
        index.remove(older_than="last tuesday")


def test_unknown_criteria_are_refused():
    index = GalleryIndex(4)
    index.add(np.eye(4, dtype=np.float32), person_ids=[1, 1, 2, 3])
    with pytest.raises(TypeError, match="person"):
        index.remove(person=[1])
    with pytest.raises(TypeError, match="older"):
        index.matching(older="30d")
    assert len(index) == 4


def test_parse_older_than_forms():
    now = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    assert parse_older_than("30d", now) == now - timedelta(days=30)
    assert parse_older_than("12h", now) == now - timedelta(hours=12)
    assert parse_older_than("2w", now) == now - timedelta(weeks=2)
    assert parse_older_than("90m", now) == now - timedelta(minutes=90)
    assert parse_older_than(timedelta(seconds=5), now) == now - timedelta(seconds=5)
    assert parse_older_than("2026-02-01T00:00:00+02:00", now) == datetime(2026, 1, 31, 22, tzinfo=timezone.utc)
    assert parse_older_than("2026-02-01", now) == datetime(2026, 2, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("index_type", ["flat", "hnsw", "ivfpq_refine"])
def test_removal_after_a_resumed_build(index_type, tmp_path):
    vectors = clustered(500)
    batches = [
        {
            "embeddings": vectors[i : i + 100],
            "person_ids": np.arange(i, i + 100) // 4,
            "paths": [f"img_{j}.jpg" for j in range(i, i + 100)],
        }
        for i in range(0, 500, 100)
    ]
    kwargs = {key: value for key, value in TYPES[index_type].items()}
    first = GalleryIndex(32, index_type, **kwargs)
    first.add_batches(
        batches[:3], checkpoint_dir=tmp_path / "idx", checkpoint_every=100, training_size=300, show_progress=False
    )  # stopped after three batches
    resumed = GalleryIndex.load_or_create(tmp_path / "idx", 32, index_type=index_type)
    assert resumed.add_batches(batches, checkpoint_dir=tmp_path / "idx", show_progress=False) == 200
    assert resumed.remove(person_ids=[3, 80, 120]) == 12
    resumed.save(tmp_path / "idx")
    loaded = GalleryIndex.load(tmp_path / "idx")
    removed = [f"img_{j}.jpg" for j in range(500) if j // 4 in (3, 80, 120)]
    assert len(loaded) == 488 and not set(loaded.paths) & set(removed)
    hits = loaded.search(vectors[[12, 320, 480, 0]], k=10)
    assert not {path for row in hits.paths for path in row} & set(removed)
    assert hits.paths[3][0] == "img_0.jpg"


def test_compressed_index_recall_against_flat_and_nprobe_choice_recorded(tmp_path):
    data = clustered(6100, dim=64, clusters=60, noise=0.5)
    gallery, queries = data[:6000], data[6000:]
    flat = GalleryIndex(64)
    flat.add(gallery)
    exact = flat.search(queries, k=10).indices

    def recall(index):
        found = index.search(queries, k=10).indices
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)])

    refined = GalleryIndex(64, "ivfpq_refine", nlist=32)
    refined.train(gallery[:3000])
    refined.add(gallery)
    choice = refined.settings["nprobe_choice"]
    assert choice["held_out"] == 200 and choice["gallery"] == 2800
    nprobe = refined.settings["nprobe"]
    assert choice["recall_at_10"] >= 0.97 or nprobe == 32  # the smallest power of 2 reaching the target, or all lists
    assert recall(refined) >= 0.9
    plain = GalleryIndex(64, "ivfpq", nlist=32, nprobe=refined.settings["nprobe"], pq_m=8)
    plain.train(gallery[:3000])
    plain.add(gallery)
    assert recall(refined) > recall(plain)
    refined.save(tmp_path / "idx")
    loaded = GalleryIndex.load(tmp_path / "idx")
    assert loaded.settings["nprobe"] == refined.settings["nprobe"]
    np.testing.assert_array_equal(loaded.search(queries, k=10).indices, refined.search(queries, k=10).indices)


@pytest.mark.parametrize("index_type", ["flat", "ivf", "ivfpq_refine", "hnsw"])
def test_mmap_load_searches_the_same_and_is_read_only(index_type, tmp_path):
    vectors = clustered(600)
    build(index_type, vectors).save(tmp_path / "idx")
    in_memory = GalleryIndex.load(tmp_path / "idx")
    mapped = GalleryIndex.load(tmp_path / "idx", mmap=True)
    queries = clustered(5, seed=3)
    a, b = in_memory.search(queries, k=10), mapped.search(queries, k=10)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
    with pytest.raises(ValueError, match="mmap=True and is read-only"):
        mapped.remove(person_ids=[0])
    with pytest.raises(ValueError, match="mmap=True and is read-only"):
        mapped.add(vectors[:1], person_ids=[1], camera_ids=[1], paths=["x.jpg"])


def test_every_load_checks_sizes_and_quick_hash_and_verify_checks_everything(tmp_path):
    index = GalleryIndex(64)
    index.add(clustered(12_000, dim=64))  # index.faiss of 3 MB: the quick hash covers its first and last MiB
    index.save(tmp_path / "idx")
    path = tmp_path / "idx" / "index.faiss"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptIndexError, match="index.faiss is damaged"):
        GalleryIndex.load(tmp_path / "idx", verify=True)
    GalleryIndex.load(tmp_path / "idx")  # by policy, the middle of a large file is checked only on request
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptIndexError, match="index.faiss is damaged"):
        GalleryIndex.load(tmp_path / "idx")
    path.write_bytes(bytes(data[:-8]))
    with pytest.raises(CorruptIndexError, match=r"index.faiss is damaged \(size"):
        GalleryIndex.load(tmp_path / "idx")


def test_cli_remove_and_verify(tmp_path, capsys, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("hf_lareid.retrieval.retention.utc_now", clock)
    vectors = clustered(60)
    index = build("flat", vectors)
    clock.now = START + timedelta(days=40)
    index.add(clustered(4, seed=5), person_ids=[99] * 4, camera_ids=[0] * 4, paths=[f"late_{i}.jpg" for i in range(4)])
    index.save(tmp_path / "idx")
    folder = str(tmp_path / "idx")

    assert main(["index", "--index_dir", folder, "--verify"]) == 0
    assert "every file matches its SHA-256 (64 images)" in capsys.readouterr().out
    assert main(["index", "--index_dir", folder, "--remove", "--person_ids", "2", "3"]) == 0
    assert "removed 8 entries" in capsys.readouterr().out
    assert main(["index", "--index_dir", folder, "--remove", "--paths", "img_0.jpg", "img_1.jpg"]) == 0
    assert main(["index", "--index_dir", folder, "--remove", "--camera_ids", "2", "--older_than", "30d"]) == 0
    assert "removed 17 entries" in capsys.readouterr().out.splitlines()[-1]
    loaded = GalleryIndex.load(folder, verify=True)
    assert len(loaded) == 64 - 8 - 2 - 17  # camera 2: 20 entries, 3 of them people 2 and 3
    assert not {"img_0.jpg", "img_1.jpg", "img_8.jpg"} & set(loaded.paths) and "late_0.jpg" in loaded.paths
    assert 2 not in loaded.camera_ids[loaded.person_ids != 99]

    assert main(["index", "--index_dir", folder, "--person_ids", "4"]) == 1  # without --remove: refused
    assert "add --remove" in capsys.readouterr().err
    assert main(["index", "--index_dir", folder, "--remove", "--older_than", "yesterday"]) == 1
    assert "neither an ISO 8601" in capsys.readouterr().err
    assert len(GalleryIndex.load(folder)) == 37
