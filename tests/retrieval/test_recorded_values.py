"""What a gallery index records is checked where it enters (thresholds, rates, sizes) and survives a moved or copied
folder (model and data paths in the index's tree are stored relative to it)."""

import json
import math
import shutil

import numpy as np
import pytest
from calibration_record import calibration_record

from hf_lareid import LATransformerConfig
from hf_lareid.evaluation import ThresholdCalibration
from hf_lareid.retrieval import CorruptIndexError, GalleryIndex, IndexWriteError
from hf_lareid.retrieval.storage import CONFIG_NAME, config_text

CALIBRATION = calibration_record(0.6)


def unit_vectors(num, dim=8, seed=0):
    vectors = np.random.default_rng(seed).normal(size=(num, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------- thresholds and sizes
@pytest.mark.parametrize("threshold", [math.nan, math.inf, -math.inf, 1.5, -2.0, "0.5", True])
def test_a_threshold_that_is_not_a_cosine_similarity_is_refused_everywhere(threshold):
    with pytest.raises(ValueError, match="verification_threshold"):
        GalleryIndex(8, verification_threshold=threshold)
    index = GalleryIndex(8, verification_threshold=0.5)
    with pytest.raises(ValueError, match="verification_threshold"):
        index.set_verification_threshold(threshold)
    assert index.verification_threshold == 0.5  # unchanged by the refused call
    with pytest.raises(ValueError, match="verification_threshold"):
        LATransformerConfig(verification_threshold=threshold)


@pytest.mark.parametrize(
    "field, value",
    [
        ("threshold", math.nan),
        ("threshold", 3.0),
        ("target_false_match_rate", 0.0),
        ("target_false_match_rate", math.nan),
        ("false_match_rate", 1.5),
        ("true_match_rate", -0.1),
        ("num_genuine_pairs", -1),
        ("num_impostor_pairs", 2.5),
    ],
)
def test_a_calibration_is_checked_whole_by_the_config_and_the_index(field, value):
    bad = {**CALIBRATION, field: value}
    with pytest.raises(ValueError, match=field):
        ThresholdCalibration.from_dict(bad)
    with pytest.raises(ValueError, match=field):
        GalleryIndex(8, verification_calibration=bad)
    with pytest.raises(ValueError, match=field):
        GalleryIndex(8).set_verification_calibration(bad)  # the setter no longer skips the rule
    with pytest.raises(ValueError, match=field):
        LATransformerConfig().set_verification_calibration(bad)


def test_the_config_and_the_index_store_the_same_checked_calibration():
    calibration = ThresholdCalibration.from_dict(CALIBRATION)
    config = LATransformerConfig()
    config.set_verification_calibration(calibration)
    index = GalleryIndex(8)
    index.set_verification_calibration(config.verification_calibration)
    assert index.verification_calibration == config.verification_calibration == CALIBRATION
    assert index.verification_threshold == config.verification_threshold == 0.6
    index.set_verification_threshold(0.25)  # by hand: the calibration no longer describes it
    assert (index.verification_threshold, index.verification_calibration) == (0.25, None)


@pytest.mark.parametrize(
    "kwargs", [{"nprobe": 0}, {"nlist": -3}, {"ef_search": 0}, {"hnsw_m": 1.5}, {"target_recall": math.nan}]
)
def test_index_sizes_and_rates_are_checked(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        GalleryIndex(8, "ivfpq_refine" if "target_recall" in kwargs else "flat", **kwargs)


def test_a_saved_threshold_that_is_not_finite_is_reported_as_a_damaged_config(tmp_path):
    index = GalleryIndex(8, verification_threshold=0.5)
    index.add(unit_vectors(3))
    index.save(tmp_path / "index")
    config_path = tmp_path / "index" / CONFIG_NAME
    config = json.loads(config_path.read_text())
    config["verification_threshold"] = math.nan  # as an older version could save it, with a matching checksum
    del config["config_sha256"]
    config_path.write_text(config_text(config))
    with pytest.raises(CorruptIndexError, match=rf"{CONFIG_NAME} holds an invalid setting.*finite"):
        GalleryIndex.load(tmp_path / "index")


# ------------------------------------------------------------------------------------------- moved and copied folders
def project(root):
    """`root/model` (a stand-in model folder), `root/data/gallery/*.jpg` and `root/index` recording both."""
    (root / "model").mkdir(parents=True)
    (root / "model" / "config.json").write_text("{}")
    (root / "data" / "gallery").mkdir(parents=True)
    for name in ("a.jpg", "b.jpg"):
        (root / "data" / "gallery" / name).write_bytes(b"jpeg")
    index = GalleryIndex(8, model_reference=str(root / "model"), data_dir=str(root / "data"))
    index.add(unit_vectors(2), paths=["gallery/a.jpg", "gallery/b.jpg"])
    index.save(root / "index")
    return root / "index"


def test_paths_in_the_index_tree_are_stored_relative_so_a_moved_folder_keeps_working(tmp_path):
    index_dir = project(tmp_path / "demo")
    config = json.loads((index_dir / CONFIG_NAME).read_text())
    assert (config["model_reference"], config["data_dir"]) == ("../model", "../data")
    assert config["relative_paths"] == ["model_reference", "data_dir"]

    shutil.move(tmp_path / "demo", tmp_path / "moved")
    moved = GalleryIndex.load(tmp_path / "moved" / "index")
    assert moved.model_reference == str(tmp_path / "moved" / "model")
    assert moved.resolve_path(moved.paths[0]) == str(tmp_path / "moved" / "data" / "gallery" / "a.jpg")


def test_a_copied_folder_uses_its_own_model_and_images(tmp_path):
    project(tmp_path / "demo")
    shutil.copytree(tmp_path / "demo", tmp_path / "copy")
    copy = GalleryIndex.load(tmp_path / "copy" / "index")
    assert copy.model_reference == str(tmp_path / "copy" / "model")
    assert copy.data_dir == str(tmp_path / "copy" / "data")
    copy.save(tmp_path / "copy" / "index")  # a resave keeps them relative to the copy
    assert json.loads((tmp_path / "copy" / "index" / CONFIG_NAME).read_text())["model_reference"] == "../model"


def test_a_hub_id_and_paths_outside_the_tree_are_stored_as_they_are(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    index = GalleryIndex(8, model_reference="user/lareid-market", data_dir=str(tmp_path / "elsewhere"))
    index.add(unit_vectors(1))
    index.save(tmp_path / "project" / "index")
    config = json.loads((tmp_path / "project" / "index" / CONFIG_NAME).read_text())
    assert (config["model_reference"], config["data_dir"]) == ("user/lareid-market", str(tmp_path / "elsewhere"))
    assert config["relative_paths"] == []


# ------------------------------------------------------------------------------------------- reading writes nothing
def test_loading_a_missing_or_foreign_folder_leaves_no_lock_file(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"jpeg")
    for target in (photos, tmp_path / "missing"):
        with pytest.raises(FileNotFoundError, match="No gallery index"):
            GalleryIndex.load(target)
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["holiday.jpg", "photos"]


def test_a_failed_write_is_one_sentence_naming_the_folder(tmp_path, monkeypatch):
    index = GalleryIndex(8)
    index.add(unit_vectors(2))
    index.save(tmp_path / "index")
    before = {path.name: path.read_bytes() for path in (tmp_path / "index").iterdir()}
    index.add(unit_vectors(2, seed=1))

    def full_disk(index, path):  # what FAISS raises when fwrite fails
        raise RuntimeError(
            "Error in void faiss::write_index(const Index*, IOWriter*, int) at index_write.cpp:499: Error: "
            f"'ret == (size * 4)' failed: write error in {path}: 65491 != 256000 (No space left on device)"
        )

    monkeypatch.setattr("faiss.write_index", full_disk)
    with pytest.raises(IndexWriteError) as raised:
        index.save(tmp_path / "index")
    message = str(raised.value)
    assert message.startswith(f"cannot write the gallery index to {tmp_path / 'index'}: No space left on device.")
    assert "free some space" in message and "faiss::" not in message and "\n" not in message
    assert {path.name: path.read_bytes() for path in (tmp_path / "index").iterdir()} == before
    assert len(GalleryIndex.load(tmp_path / "index")) == 2


def test_a_relative_path_outside_the_tree_is_recorded_absolute(tmp_path, monkeypatch):
    (tmp_path / "models" / "reid").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    index = GalleryIndex(8, model_reference="../models/reid")  # as `lareid index ../models/reid` gives it
    index.add(unit_vectors(1))
    index.save(tmp_path / "work" / "project" / "index")
    monkeypatch.chdir(tmp_path)  # another working folder: the recorded path still names the model
    assert GalleryIndex.load("work/project/index").model_reference == str(tmp_path / "models" / "reid")
