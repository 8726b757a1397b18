"""The web app's API endpoints through `gradio_client`, against the same `lareid serve` as the browser tests."""

import pytest
from PIL import Image

from hf_lareid.web.service import NO_THRESHOLD, SAME_PERSON, UNREADABLE


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server["url"], verbose=False)


def test_the_endpoints_are_listed(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/search", "/compare", "/attention", "/gallery_image"} <= set(endpoints)


def test_search_returns_json_hits_with_the_exact_copy_first(client, server):
    from gradio_client import handle_file

    index = server["index"]
    answer = client.predict(handle_file(index.resolve_path(index.paths[2])), 4, -1, -1, api_name="/search")
    hits = answer["hits"]
    assert len(hits) == 4 and [hit["rank"] for hit in hits] == [1, 2, 3, 4]
    assert hits[0]["file"] == index.resolve_path(index.paths[2]) and hits[0]["person_id"] == int(index.person_ids[2])
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-5) and hits[0]["same_person"] is True
    assert [hit["score"] for hit in hits] == sorted((hit["score"] for hit in hits), reverse=True)
    assert answer["threshold"] == answer["calibration"]["threshold"] == index.verification_threshold


def test_search_with_a_named_camera_leaves_out_all_of_it(client, server):
    from gradio_client import handle_file

    index = server["index"]
    camera = int(index.camera_ids[0])
    answer = client.predict(handle_file(index.resolve_path(index.paths[0])), 10, camera, -1, api_name="/search")
    assert answer["hits"] and all(hit["camera_id"] != camera for hit in answer["hits"])
    assert len(answer["hits"]) == int((index.camera_ids != camera).sum())


def test_gallery_image_and_compare(client, server):
    from gradio_client import handle_file

    picked = client.predict(1, api_name="/gallery_image")
    assert picked == {
        "index": 1,
        "file": server["index"].resolve_path(server["index"].paths[1]),
        "person_id": int(server["index"].person_ids[1]),
        "camera_id": int(server["index"].camera_ids[1]),
    }
    answer = client.predict(handle_file(picked["file"]), handle_file(picked["file"]), api_name="/compare")
    assert answer["verdict"] == SAME_PERSON != NO_THRESHOLD
    assert answer["cosine"] == pytest.approx(1.0, abs=1e-5)
    assert answer["false_match_rate"] <= answer["target_false_match_rate"] == pytest.approx(0.1)
    assert "query split" in answer["calibrated_on"]


def test_attention_returns_a_png(client, server):
    from gradio_client import handle_file

    index = server["index"]
    picture = client.predict(handle_file(index.resolve_path(index.paths[0])), api_name="/attention")
    with Image.open(picture) as image:
        assert image.format == "PNG" and min(image.size) > 50


def test_a_damaged_image_is_an_error_with_the_apps_message(client, server, tmp_path):
    from gradio_client import handle_file

    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(open(server["index"].resolve_path(server["index"].paths[0]), "rb").read()[:300])
    with pytest.raises(Exception, match="not a readable image") as raised:
        client.predict(handle_file(str(damaged)), 3, -1, -1, api_name="/search")
    assert UNREADABLE.format(name="the query image") in str(raised.value)
    with pytest.raises(Exception, match="no query image"):
        client.predict(None, 3, -1, -1, api_name="/search")
