"""GalleryIndex: exact and approximate search, metadata, thresholds, atomic save/load, resumable builds."""

import json
import os

import numpy as np
import pytest
import torch
from calibration_record import calibration_record

from hf_lareid import Provenance
from hf_lareid.retrieval import CorruptIndexError, FingerprintMismatchError, GalleryIndex
from hf_lareid.retrieval.storage import config_digest as _config_digest


def entries(folder):
    """The folder's entries without the write locks (`.NAME.lock`), which stay beside an index by design."""
    return sorted(name for name in os.listdir(folder) if not name.endswith(".lock"))


def unit_vectors(num, dim=16, seed=0):
    vectors = np.random.default_rng(seed).normal(size=(num, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def filled_index(num=50, dim=16, **kwargs):
    index = GalleryIndex(dim, model_reference="user/model", model_fingerprint="fp-1", **kwargs)
    vectors = unit_vectors(num, dim)
    index.add(
        vectors,
        person_ids=np.arange(num) // 5,
        camera_ids=np.arange(num) % 3,
        paths=[f"img_{i}.jpg" for i in range(num)],
    )
    return index, vectors


def test_exact_search_matches_brute_force_with_metadata():
    index, vectors = filled_index()
    queries = unit_vectors(4, seed=1)
    result = index.search(torch.from_numpy(queries), k=5)
    expected = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(result.indices, expected)
    np.testing.assert_allclose(result.scores, np.take_along_axis(queries @ vectors.T, expected, 1), atol=1e-5)
    np.testing.assert_array_equal(result.person_ids, expected // 5)
    np.testing.assert_array_equal(result.camera_ids, expected % 3)
    assert result.paths[0][0] == f"img_{expected[0, 0]}.jpg"
    assert result.same_person is None
    assert index.search(queries[0], k=100).indices.shape == (1, 50)  # one query, k clamped to the size


def test_threshold_gives_same_person_flags():
    index, vectors = filled_index(verification_threshold=0.5)
    result = index.search(vectors[:3], k=4)
    np.testing.assert_array_equal(result.same_person, result.scores > 0.5)
    assert result.same_person[:, 0].all()  # each vector finds itself with similarity 1


@pytest.mark.parametrize(
    "index_type, kwargs",
    [("ivf", dict(nlist=4, nprobe=4)), ("hnsw", {}), ("ivfpq", dict(nlist=2, nprobe=2, pq_m=8, pq_bits=4))],
)
def test_approximate_indexes_find_clear_neighbours(index_type, kwargs, tmp_path):
    vectors = unit_vectors(400, 16)
    index = GalleryIndex(16, index_type, **kwargs)
    index.add(vectors)  # trains ivf types on these vectors
    noisy = vectors[:20] + 0.01 * unit_vectors(20, 16, seed=3)
    queries = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    assert (index.search(queries, k=1).indices[:, 0] == np.arange(20)).mean() >= 0.9
    index.save(tmp_path / "idx")
    loaded = GalleryIndex.load(tmp_path / "idx")
    assert loaded.index_type == index_type and len(loaded) == 400 and loaded.settings == index.settings
    np.testing.assert_array_equal(loaded.search(queries, k=3).indices, index.search(queries, k=3).indices)


def test_save_load_round_trip(tmp_path):
    index, vectors = filled_index(verification_threshold=0.7)
    index.save(tmp_path / "gallery")
    index.save(tmp_path / "gallery")  # overwriting keeps one clean folder
    assert entries(tmp_path) == ["gallery"]
    loaded = GalleryIndex.load(tmp_path / "gallery")
    assert (loaded.model_reference, loaded.model_fingerprint, loaded.verification_threshold) == (
        "user/model",
        "fp-1",
        0.7,
    )
    assert loaded.paths == index.paths
    np.testing.assert_array_equal(loaded.person_ids, index.person_ids)
    before, after = index.search(vectors[:5], k=3), loaded.search(vectors[:5], k=3)
    np.testing.assert_array_equal(before.indices, after.indices)
    np.testing.assert_array_equal(before.same_person, after.same_person)


def test_interrupted_save_keeps_the_previous_index(tmp_path, monkeypatch):
    index, _ = filled_index()
    index.save(tmp_path / "gallery")
    index.add(unit_vectors(5, seed=9), person_ids=[0] * 5, camera_ids=[0] * 5, paths=list("abcde"))

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError, match="disk full"):
        index.save(tmp_path / "gallery")
    assert entries(tmp_path) == ["gallery"]  # no temporary folder left behind
    assert len(GalleryIndex.load(tmp_path / "gallery")) == 50


def test_failed_swap_restores_the_previous_index(tmp_path, monkeypatch):
    index, vectors = filled_index()
    index.save(tmp_path / "gallery")
    index.add(unit_vectors(5, seed=9), person_ids=[0] * 5, camera_ids=[0] * 5, paths=list("abcde"))
    real_rename, calls = os.rename, []

    def rename(source, target):  # 1st call: old index -> backup; 2nd: new index -> gallery (fails)
        calls.append((source, target))
        if len(calls) == 2:
            raise OSError("rename failed")
        return real_rename(source, target)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="rename failed"):
        index.save(tmp_path / "gallery")
    assert len(calls) >= 2
    monkeypatch.undo()
    assert entries(tmp_path) == ["gallery"]  # backup restored, temporary folder removed
    loaded = GalleryIndex.load(tmp_path / "gallery")
    assert len(loaded) == 50 and loaded.paths == [f"img_{i}.jpg" for i in range(50)]
    np.testing.assert_array_equal(loaded.search(vectors[:3], k=1).indices[:, 0], np.arange(3))


def test_crash_between_renames_is_repaired_by_the_next_load(tmp_path, caplog):
    index, vectors = filled_index()
    index.save(tmp_path / "gallery")
    os.rename(tmp_path / "gallery", tmp_path / ".gallery.old-0123")  # as if killed between the two renames
    (tmp_path / ".gallery.tmp-4567").mkdir()  # and the new index's temporary folder
    loaded = GalleryIndex.load(tmp_path / "gallery")
    assert entries(tmp_path) == ["gallery"] and len(loaded) == 50
    np.testing.assert_array_equal(loaded.search(vectors[:3], k=1).indices[:, 0], np.arange(3))
    assert "restored" in caplog.text and ".gallery.old-0123" in caplog.text and ".gallery.tmp-4567" in caplog.text


def test_corrupt_and_missing_files(tmp_path):
    index, _ = filled_index()
    index.save(tmp_path / "gallery")
    with open(tmp_path / "gallery" / "index.faiss", "r+b") as handle:
        handle.seek(100)
        handle.write(b"garbage")
    with pytest.raises(CorruptIndexError, match="index.faiss is damaged"):
        GalleryIndex.load(tmp_path / "gallery")
    index.save(tmp_path / "gallery")
    (tmp_path / "gallery" / "metadata.npz").unlink()
    with pytest.raises(CorruptIndexError, match="metadata.npz is missing"):
        GalleryIndex.load(tmp_path / "gallery")
    (tmp_path / "gallery" / "gallery_config.json").write_text("{not json")
    with pytest.raises(CorruptIndexError, match="not a valid"):
        GalleryIndex.load(tmp_path / "gallery")
    with pytest.raises(FileNotFoundError, match="No gallery index"):
        GalleryIndex.load(tmp_path / "nothing")


def test_inconsistent_sizes_are_detected(tmp_path):
    index, _ = filled_index()
    index.save(tmp_path / "gallery")
    config_path = tmp_path / "gallery" / "gallery_config.json"
    config = json.loads(config_path.read_text())
    config["size"] = 7
    config_path.write_text(json.dumps(config))
    with pytest.raises(CorruptIndexError, match="does not match its own checksum"):
        GalleryIndex.load(tmp_path / "gallery")
    config["config_sha256"] = _config_digest(config)  # an edit that also recomputes the checksum
    config_path.write_text(json.dumps(config))
    with pytest.raises(CorruptIndexError, match="inconsistent"):
        GalleryIndex.load(tmp_path / "gallery")


def test_bad_inputs():
    index, vectors = filled_index()
    with pytest.raises(ValueError, match=r"shape \(n, 16\)"):
        index.search(unit_vectors(2, 8))
    with pytest.raises(ValueError, match="unit-norm"):
        index.search(vectors[:2] * 2)
    with pytest.raises(ValueError, match="NaN"):
        index.add(np.full((1, 16), np.nan), person_ids=[0], camera_ids=[0], paths=["x"])
    with pytest.raises(ValueError, match="must match"):
        index.add(vectors[:3], person_ids=[0, 1], camera_ids=[0, 0, 0], paths=["a", "b", "c"])
    with pytest.raises(ValueError, match="same fields"):
        index.add(vectors[:3])
    with pytest.raises(FingerprintMismatchError, match="fp-2"):
        index.search(vectors[:1], provenance=Provenance(model_fingerprint="fp-2"))
    index.check_fingerprint("fp-1")
    with pytest.raises(ValueError, match="empty"):
        GalleryIndex(16).search(vectors[:1])
    with pytest.raises(ValueError, match="index_type"):
        GalleryIndex(16, "lsh")
    with pytest.raises(ValueError, match="at least"):
        GalleryIndex(16, "ivf", nlist=64).add(vectors[:10])


class Batch:
    """Duck-typed like hf_lareid.FeatureSet."""

    def __init__(self, embeddings, person_ids, camera_ids, paths):
        self.embeddings, self.person_ids, self.camera_ids, self.paths = embeddings, person_ids, camera_ids, paths


def batches(vectors, size, with_paths=True, form="object"):
    for start in range(0, len(vectors), size):
        rows = np.arange(start, min(start + size, len(vectors)))
        paths = [f"p{i}" for i in rows] if with_paths else None
        if form == "object":
            yield Batch(vectors[rows], rows // 4, rows % 2, paths or [])
        elif form == "dict":
            yield {"embeddings": torch.from_numpy(vectors[rows]), "person_ids": rows // 4, "paths": paths}
        else:
            yield vectors[rows], {"person_ids": rows // 4, "paths": paths}


@pytest.mark.parametrize("with_paths", [True, False])
def test_resumed_build_skips_what_is_indexed_by_path(tmp_path, with_paths):
    vectors = unit_vectors(100)
    checkpoint = tmp_path / "ckpt"

    def interrupted():
        for number, batch in enumerate(batches(vectors, 10, with_paths)):
            if number == 6:
                raise KeyboardInterrupt
            yield batch

    index = GalleryIndex(16)
    with pytest.raises(KeyboardInterrupt):
        index.add_batches(interrupted(), checkpoint_dir=checkpoint, checkpoint_every=25, show_progress=False)
    resumed = GalleryIndex.load_or_create(checkpoint, dim=16)
    assert len(resumed) == 60  # checkpoints once >= 25 images were added since the last: at 30 and 60
    if not with_paths:  # resuming identifies entries by path: without paths it refuses, adding nothing
        with pytest.raises(ValueError, match="resumes by path.*holds 60 entries"):
            resumed.add_batches(batches(vectors, 10, with_paths), checkpoint_dir=checkpoint, show_progress=False)
        assert len(resumed) == 60 and len(GalleryIndex.load(checkpoint)) == 60
        return
    added = resumed.add_batches(batches(vectors, 10, with_paths), checkpoint_dir=checkpoint, show_progress=False)
    assert added == 40 and len(resumed) == 100
    final = GalleryIndex.load(checkpoint)
    np.testing.assert_array_equal(final.person_ids, np.arange(100) // 4)
    np.testing.assert_array_equal(final.search(vectors, k=1).indices[:, 0], np.arange(100))
    assert final.paths == [f"p{i}" for i in range(100)]
    assert "p7" in final.indexed_paths


@pytest.mark.parametrize("form", ["dict", "tuple"])
def test_add_batches_trains_ivf_from_buffered_batches(form):
    vectors = unit_vectors(300)
    index = GalleryIndex(16, "ivf", nlist=4, nprobe=4)
    assert index.add_batches(batches(vectors, 32, form=form), training_size=100, show_progress=False) == 300
    assert index.is_trained and len(index) == 300
    np.testing.assert_array_equal(index.person_ids, np.arange(300) // 4)
    assert (index.search(vectors[:50], k=1).indices[:, 0] == np.arange(50)).mean() >= 0.9


def test_load_or_create_checks_fingerprint(tmp_path):
    index, _ = filled_index()
    index.save(tmp_path / "gallery")
    with pytest.raises(FingerprintMismatchError):
        GalleryIndex.load_or_create(tmp_path / "gallery", dim=16, model_fingerprint="other")
    with pytest.raises(ValueError, match="dim=16"):
        GalleryIndex.load_or_create(tmp_path / "gallery", dim=32)
    assert len(GalleryIndex.load_or_create(tmp_path / "new", dim=16)) == 0


def test_the_whole_calibration_is_saved_with_the_index(tmp_path):
    calibration = calibration_record(0.7)
    index, _ = filled_index(verification_calibration=calibration)
    assert index.verification_threshold == 0.7
    index.save(tmp_path / "index")
    loaded = GalleryIndex.load(tmp_path / "index")
    assert loaded.verification_calibration == calibration and loaded.verification_threshold == 0.7
    loaded.set_verification_calibration({**calibration, "threshold": 0.3})
    assert loaded.verification_threshold == 0.3
    with pytest.raises(ValueError, match="differs from the threshold"):
        GalleryIndex(16, verification_threshold=0.5, verification_calibration=calibration)


def test_unindexed_compares_paths_resolved_against_data_dir():
    index = GalleryIndex(16, data_dir="/data/Market")
    index.add(unit_vectors(2), paths=["bounding_box_test/a.jpg", "/elsewhere/b.jpg"])
    given = ["/data/Market/bounding_box_test/a.jpg", "bounding_box_test/a.jpg", "/elsewhere/b.jpg", "c.jpg"]
    np.testing.assert_array_equal(index.unindexed(given), [False, False, False, True])
