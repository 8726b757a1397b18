"""Course-set loader: seeded, configurable id assignment and disjoint query/gallery images."""

import logging

import pytest

from hf_lareid.data import ReIDDataError, load_reid_dataset

CAMERA_FILES = [f"c{camera}_angle{angle}.png" for camera in (1, 2) for angle in range(2)]


@pytest.fixture
def course_dir(person_folders_factory):
    """80 person folders 001..080, each with 2 cameras x 2 angles."""
    return person_folders_factory([f"{i:03d}" for i in range(1, 81)], CAMERA_FILES, root_name="course")


def _ids(dataset):
    return set(dataset["person_id"])


def test_default_assignment_62_12_rest(course_dir, cache_dir):
    data = load_reid_dataset("course", data_dir=course_dir, cache_dir=cache_dir)
    assert list(data) == ["train", "query", "gallery", "test_query", "test_gallery"]
    assert len(_ids(data["train"])) == 62
    assert data["train"].features["label"].num_classes == 62
    assert data["train"].features["label"].names[0] == f"{min(_ids(data['train'])):03d}"
    assert _ids(data["query"]) == _ids(data["gallery"]) and len(_ids(data["query"])) == 12
    assert _ids(data["test_query"]) == _ids(data["test_gallery"]) and len(_ids(data["test_query"])) == 6
    assert not _ids(data["train"]) & _ids(data["query"]) and not _ids(data["query"]) & _ids(data["test_query"])
    # Cameras are known, so camera 1 is the query and camera 2 the gallery; images are disjoint.
    assert set(data["query"]["camera_id"]) == {1} and set(data["gallery"]["camera_id"]) == {2}
    assert not set(data["query"]["path"]) & set(data["gallery"]["path"])


def test_assignment_is_seeded_and_configurable(course_dir, cache_dir):
    def val_ids(**options):
        data = load_reid_dataset("course", data_dir=course_dir, splits=["query"], cache_dir=cache_dir, **options)
        return _ids(data["query"])

    assert val_ids(seed=0) == val_ids(seed=0)
    assert val_ids(seed=0) != val_ids(seed=1)
    assert val_ids(val_ids=[1, 2, 3]) == {1, 2, 3}
    data = load_reid_dataset(
        "course", data_dir=course_dir, num_train_ids=10, num_val_ids=5, train_ids=range(11, 21), cache_dir=cache_dir
    )
    assert _ids(data["train"]) == set(range(11, 21))
    assert len(_ids(data["query"])) == 5 and len(_ids(data["test_query"])) == 65


def test_alternate_split_without_cameras(person_folders_factory, cache_dir):
    root = person_folders_factory([f"{i:03d}" for i in range(1, 11)], [f"img{k}.jpg" for k in range(4)])
    data = load_reid_dataset("course", data_dir=root, num_train_ids=6, num_val_ids=4, cache_dir=cache_dir)
    assert list(data) == ["train", "query", "gallery"]  # no test ids left: no test splits
    assert set(data["query"]["camera_id"]) == {-1}
    query_names = {path.rsplit("/", 1)[1] for path in data["query"]["path"]}
    assert query_names == {"img0.jpg", "img2.jpg"} and data["gallery"].num_rows == 8


def test_single_image_person_goes_to_gallery(person_folders_factory, image_writer, cache_dir, caplog):
    root = person_folders_factory([f"{i:03d}" for i in range(1, 5)], ["a.jpg", "b.jpg"])
    image_writer(root / "005" / "only.jpg")
    with caplog.at_level(logging.WARNING, logger="hf_lareid.data"):
        data = load_reid_dataset("course", data_dir=root, num_train_ids=2, val_ids=[4, 5], cache_dir=cache_dir)
    assert 5 not in data["query"]["person_id"] and 5 in data["gallery"]["person_id"]
    assert "005" in caplog.text and "single image" in caplog.text


def test_too_few_ids_and_bad_ids(person_folders_factory, cache_dir):
    root = person_folders_factory(["001", "002", "003"], ["a.jpg", "b.jpg"])
    with pytest.raises(ReIDDataError, match=r"Need 62 ids for the 'train' group.*num_train_ids"):
        load_reid_dataset("course", data_dir=root, cache_dir=cache_dir)
    with pytest.raises(ReIDDataError, match=r"val_ids \[9\] are not person folders"):
        load_reid_dataset("course", data_dir=root, num_train_ids=1, val_ids=[9], cache_dir=cache_dir)
    with pytest.raises(ReIDDataError, match="more than one"):
        load_reid_dataset("course", data_dir=root, train_ids=[1], val_ids=[1], cache_dir=cache_dir)


def test_explicit_test_ids_leave_no_id_without_a_group(course_dir, cache_dir):
    # 80 ids: 62 train + 12 val drawn, so test_ids of the 6 others cover every id.
    data = load_reid_dataset("course", data_dir=course_dir, test_ids=[75, 76, 77, 78, 79, 80], cache_dir=cache_dir)
    assert _ids(data["test_query"]) == set(range(75, 81))
    assert _ids(data["train"]) | _ids(data["query"]) | _ids(data["test_query"]) == set(range(1, 81))
    # Only 3 test ids: 3 ids are left after the draws; they must not vanish silently.
    with pytest.raises(ReIDDataError, match=r"3 person id\(s\) fall in no group: \[\d+, \d+, \d+\]") as error:
        load_reid_dataset("course", data_dir=course_dir, test_ids=[78, 79, 80], cache_dir=cache_dir)
    assert "test_ids" in str(error.value) and "num_train_ids / num_val_ids" in str(error.value)
    data = load_reid_dataset(
        "course", data_dir=course_dir, test_ids=[78, 79, 80], num_train_ids=65, cache_dir=cache_dir
    )  # the fix the message names
    assert len(_ids(data["train"])) == 65 and len(_ids(data["query"])) == 12
