"""The one same-camera filter (`search_other_cameras`) that `lareid search`, the demo and the web app share."""

import numpy as np
import pytest

from hf_lareid.retrieval import GalleryIndex, same_camera_mask, search_other_cameras


def unit_vectors(num, dim=8, seed=0):
    vectors = np.random.default_rng(seed).normal(size=(num, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def index():
    """12 images: persons 0..3 (three images each), cameras 0, 1, 2 in turn."""
    gallery = GalleryIndex(8, verification_threshold=0.5)
    gallery.add(
        unit_vectors(12),
        person_ids=np.arange(12) // 3,
        camera_ids=np.arange(12) % 3,
        paths=[f"{i}.jpg" for i in range(12)],
    )
    return gallery


def test_known_person_leaves_out_only_that_persons_images_from_that_camera(index):
    mask = same_camera_mask(index, query_camera_id=1, query_person_id=0)
    assert np.flatnonzero(mask).tolist() == [1]  # person 0 is images 0, 1, 2; image 1 is camera 1
    assert np.flatnonzero(same_camera_mask(index, 1)).tolist() == [1, 4, 7, 10]  # unknown person: the whole camera
    assert not same_camera_mask(index, -1, 0).any() and not same_camera_mask(index, None).any()


def test_search_keeps_k_hits_from_other_cameras_best_first(index):
    queries = unit_vectors(12)[[1, 5]]  # exact copies of gallery images 1 and 5
    hits = search_other_cameras(index, queries, 4, [1, 2], [0, 1])
    assert hits.indices.shape == (2, 4)
    assert 1 not in hits.indices[0] and 5 not in hits.indices[1]  # the query images themselves are left out
    full = index.search(queries, k=12)
    for row, left_out in enumerate([{1}, {5}]):
        expected = [i for i in full.indices[row] if i not in left_out][:4]
        assert hits.indices[row].tolist() == expected
        np.testing.assert_allclose(
            hits.scores[row], [full.scores[row][list(full.indices[row]).index(i)] for i in expected]
        )
    assert hits.paths[0] == [f"{i}.jpg" for i in hits.indices[0]]
    np.testing.assert_array_equal(hits.person_ids, hits.indices // 3)
    np.testing.assert_array_equal(hits.same_person, hits.scores > 0.5)


def test_unknown_person_leaves_out_the_whole_camera_and_unknown_camera_nothing(index):
    query = unit_vectors(12)[[4]]
    hits = search_other_cameras(index, query, 12, [1])
    assert len(hits.indices[0]) == 8 and not (hits.camera_ids == 1).any()
    assert search_other_cameras(index, query, 12, [-1]).indices.tolist() == index.search(query, k=12).indices.tolist()


def test_rows_are_cut_to_the_shortest_and_bad_calls_are_refused(index):
    queries = unit_vectors(12)[[0, 1]]
    hits = search_other_cameras(index, queries, 12, [0, -1])  # row 0 loses a whole camera (4 images)
    assert hits.indices.shape == (2, 8)
    with pytest.raises(ValueError, match="2 query camera ids but 1 query person ids"):
        search_other_cameras(index, queries, 3, [0, 1], [0])
    with pytest.raises(ValueError, match="queries but 1 query camera ids"):
        search_other_cameras(index, queries, 3, [0])
    no_cameras = GalleryIndex(8)
    no_cameras.add(unit_vectors(3), person_ids=[0, 1, 2])
    with pytest.raises(ValueError, match="stores no camera ids"):
        search_other_cameras(no_cameras, queries[:1], 2, [0])
