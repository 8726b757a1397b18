"""The web app's answers (`ReIDService`) and the text the page draws from them, without a server or Gradio."""

import pytest

from hf_lareid import LATransformerForReID
from hf_lareid.embedding import extract_features, model_fingerprint
from hf_lareid.retrieval import GalleryIndex
from hf_lareid.web.app import describe_threshold, hit_caption, render_hits, render_verdict
from hf_lareid.web.service import DIFFERENT_PEOPLE, NO_THRESHOLD, SAME_PERSON, ReIDService, WebAppError


@pytest.fixture
def gallery_files(tmp_path, random_images):
    """The five random images saved as PNGs: persons 0, 0, 1, 1, 2 seen by cameras 0, 1, 0, 1, 0."""
    paths = []
    for number, image in enumerate(random_images):
        path = tmp_path / "gallery" / f"{number}.png"
        path.parent.mkdir(exist_ok=True)
        image.save(path)
        paths.append(str(path))
    return paths


def save_index(model_dir, files, index_dir, **kwargs):
    from transformers import AutoImageProcessor

    model = LATransformerForReID.from_pretrained(model_dir)
    image_processor = AutoImageProcessor.from_pretrained(model_dir, backend="pil")
    features = extract_features(model, files, image_processor=image_processor, progress=False)
    index = GalleryIndex(
        features.embeddings.shape[1],
        model_reference=str(model_dir),
        model_fingerprint=model_fingerprint(model),
        **kwargs,
    )
    index.add(features.embeddings, person_ids=[0, 0, 1, 1, 2], camera_ids=[0, 1, 0, 1, 0], paths=files)
    index.save(index_dir)
    return index_dir


CALIBRATION = {
    "threshold": 0.5,
    "target_false_match_rate": 0.01,
    "false_match_rate": 0.008,
    "true_match_rate": 0.9,
    "num_genuine_pairs": 5,
    "num_impostor_pairs": 500,
    "calibrated_on": "the test people",
}


def test_search_answers_json_with_the_exact_copy_first(tiny_model_dir, gallery_files, tmp_path):
    service = ReIDService.load(
        save_index(tiny_model_dir, gallery_files, tmp_path / "index", verification_calibration=CALIBRATION)
    )
    answer = service.search(gallery_files[3], top_k=3)
    hits = answer["hits"]
    assert [hit["rank"] for hit in hits] == [1, 2, 3]
    assert hits[0] | {"score": round(hits[0]["score"], 4)} == {
        "rank": 1,
        "index": 3,
        "file": gallery_files[3],
        "score": 1.0,
        "person_id": 1,
        "camera_id": 1,
        "same_person": True,
    }
    assert all(hit["same_person"] == (hit["score"] > 0.5) for hit in hits)
    assert answer["calibration"] == CALIBRATION and answer["threshold"] == 0.5

    known = service.search(gallery_files[3], top_k=5, query_camera=1, query_person=1)  # a gallery pick
    assert sorted(hit["index"] for hit in known["hits"]) == [0, 1, 2, 4]  # person 1's camera-1 image (3) is left out
    unknown = service.search(gallery_files[3], top_k=5, query_camera=1)  # an upload with a named camera
    assert sorted(hit["index"] for hit in unknown["hits"]) == [0, 2, 4]


def test_compare_says_the_verdict_or_that_there_is_no_threshold(tiny_model_dir, gallery_files, tmp_path):
    calibrated = ReIDService.load(
        save_index(tiny_model_dir, gallery_files, tmp_path / "a", verification_calibration=CALIBRATION)
    )
    same = calibrated.compare(gallery_files[0], gallery_files[0])
    assert same["verdict"] == SAME_PERSON and same["cosine"] == pytest.approx(1.0, abs=1e-5)
    assert (same["false_match_rate"], same["target_false_match_rate"], same["calibrated_on"]) == (
        0.008,
        0.01,
        "the test people",
    )
    assert "calibrated at a false-match rate of 0.80% (target 1.00%) on the test people" in render_verdict(same)
    assert render_verdict(same).startswith(f"## {SAME_PERSON}\n")

    uncalibrated = ReIDService.load(save_index(tiny_model_dir, gallery_files, tmp_path / "b"))
    answer = uncalibrated.compare(gallery_files[0], gallery_files[1])
    assert answer["verdict"] == NO_THRESHOLD and answer["threshold"] is None
    assert render_verdict(answer).startswith(f"## {NO_THRESHOLD}\n")
    assert all(hit["same_person"] is None for hit in uncalibrated.search(gallery_files[0], 2)["hits"])

    by_hand = ReIDService.load(save_index(tiny_model_dir, gallery_files, tmp_path / "c", verification_threshold=1.0))
    answer = by_hand.compare(gallery_files[0], gallery_files[1])
    assert answer["verdict"] == DIFFERENT_PEOPLE and answer["false_match_rate"] is None
    assert "set by hand" in render_verdict(answer)


def test_bad_inputs_are_one_line_messages(tiny_model_dir, gallery_files, tmp_path):
    service = ReIDService.load(save_index(tiny_model_dir, gallery_files, tmp_path / "index"))
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(WebAppError, match="the query image is not a readable image"):
        service.search(str(damaged))
    with pytest.raises(WebAppError, match="no first image"):
        service.compare(None, gallery_files[0])
    with pytest.raises(WebAppError, match="top-k must be at least 1"):
        service.search(gallery_files[0], top_k=0)
    with pytest.raises(WebAppError, match="images 0 to 4, not 5"):
        service.gallery_image(5)

    empty_dir = tmp_path / "empty"
    GalleryIndex(
        service.index.dim, model_reference=str(tiny_model_dir), model_fingerprint=service.index.model_fingerprint
    ).save(empty_dir)
    empty = ReIDService.load(empty_dir)
    with pytest.raises(WebAppError, match="is empty: build it with `lareid index`"):
        empty.search(gallery_files[0])
    assert empty.compare(gallery_files[0], gallery_files[0])["verdict"] == NO_THRESHOLD  # compare needs no gallery
    assert empty.gallery_sample() == []


def test_gallery_picks_and_the_attention_picture(tiny_model_dir, gallery_files, tmp_path):
    from PIL import Image

    service = ReIDService.load(save_index(tiny_model_dir, gallery_files, tmp_path / "index"))
    assert service.gallery_image(2) == {"index": 2, "file": gallery_files[2], "person_id": 1, "camera_id": 0}
    assert service.gallery_sample(3) == [0, 2, 4] and service.gallery_sample() == [0, 1, 2, 3, 4]
    assert service.gallery_folders() == [str(tmp_path / "gallery")]
    with Image.open(service.attention(gallery_files[0])) as picture:
        assert picture.format == "PNG"


def test_the_page_text_of_a_search():
    hit = {
        "rank": 1,
        "index": 7,
        "file": "a.jpg",
        "score": 0.98765,
        "person_id": 12,
        "camera_id": 2,
        "same_person": True,
    }
    assert hit_caption(hit) == "#1 · 0.988 · person 12 · camera 2 · same person"
    grid, status = render_hits(
        {"hits": [hit], "query_camera": 2, "query_person": 12, "threshold": 0.5, "calibration": CALIBRATION}
    )
    assert grid == [("a.jpg", hit_caption(hit))]
    assert status.startswith("**1 hit**, leaving out person 12's images from camera 2 (the query's camera).")
    assert "calibrated at a false-match rate of **0.80%**" in status
    assert describe_threshold(None, None).startswith(f"**{NO_THRESHOLD}**")


def test_queries_are_embedded_as_the_index_records(tiny_model_dir, gallery_files, tmp_path):
    from transformers import AutoImageProcessor

    from hf_lareid.embedding import embedding_settings
    from hf_lareid.retrieval import EmbeddingSettingsMismatchError

    processor = AutoImageProcessor.from_pretrained(tiny_model_dir, backend="pil")
    flipped = save_index(
        tiny_model_dir, gallery_files, tmp_path / "flipped", embedding_settings=embedding_settings(processor, True)
    )
    assert ReIDService.load(flipped).flip is True
    other = embedding_settings(processor, False) | {"processor_size": {"height": 128, "width": 64}}
    with pytest.raises(EmbeddingSettingsMismatchError):
        ReIDService.load(save_index(tiny_model_dir, gallery_files, tmp_path / "other", embedding_settings=other))
