"""The web app in a real browser (Debian's Chromium driven by Playwright) against a `lareid serve` subprocess."""

from pathlib import Path

from web_helpers import LOCAL_HOSTS, save_screenshot

from hf_lareid.web.service import UNREADABLE


def gallery_image(server, row: int) -> tuple[str, int, int]:
    """(file, person id, camera id) of gallery image `row` of the test index."""
    index = server["index"]
    return index.resolve_path(index.paths[row]), int(index.person_ids[row]), int(index.camera_ids[row])


def set_top_k(page, value: int) -> None:
    field = page.locator("#top-k input[type=number]")
    field.fill(str(value))
    field.press("Enter")


def search(page, image: str) -> list[str]:
    """Uploads `image` as the query, searches, waits for the grid and returns the hits' captions, best first."""
    page.locator("#query-image input[type=file]").set_input_files(image)
    page.locator("#query-image img").wait_for()
    page.click("#search-button")
    return captions_after_search(page)


def captions_after_search(page) -> list[str]:
    page.locator("#search-status", has_text=" hits").wait_for()
    page.locator("#hits .caption-label").first.wait_for()
    return page.locator("#hits .caption-label").all_inner_texts()


def test_search_finds_the_exact_copy_first_and_shows_ids_and_verdicts(page, server, tmp_path):
    file, person, camera = gallery_image(server, 3)
    set_top_k(page, 5)
    captions = search(page, file)
    assert len(captions) == 5
    assert page.locator("#hits .thumbnail-item img").count() == 5
    assert captions[0].startswith("#1 · 1.000") and f"person {person}" in captions[0]
    assert f"camera {camera}" in captions[0] and captions[0].endswith("same person")
    assert all(caption.endswith(("same person", "different people")) for caption in captions)
    assert "5 hits" in page.inner_text("#search-status")
    assert "calibrated at a false-match rate of" in page.inner_text("#search-status")
    save_screenshot(page, tmp_path, "web_app_search.png")

    page.click("text=Attention rollout of the query, with its row parts")
    page.click("#attention-button")
    page.locator("#attention img").wait_for()
    assert page.locator("#attention img").get_attribute("src")

    not_local = [url for url in page.requests if url.split("/")[2].split(":")[0] not in LOCAL_HOSTS]
    assert page.requests and not not_local, not_local  # no fonts, scripts or analytics from the internet


def test_a_gallery_pick_leaves_out_its_camera(page, server):
    row = 0
    page.click("text=Pick a query from the gallery")
    page.locator("#gallery-picker .thumbnail-item").nth(row).click()
    _, person, camera = gallery_image(server, gallery_pick_row(server, row))
    page.wait_for_function(
        "([camera, person]) => document.querySelector('#query-camera input').value == camera"
        " && document.querySelector('#query-person input').value == person",
        arg=[str(camera), str(person)],
    )
    page.click("#search-button")
    captions = captions_after_search(page)
    same_camera = f"person {person} · camera {camera} ·"
    assert captions and not any(same_camera in caption for caption in captions)  # the query itself is left out
    assert f"leaving out person {person}'s images from camera {camera}" in page.inner_text("#search-status")


def gallery_pick_row(server, position: int) -> int:
    """The gallery row the picker shows at `position` (an even spread of the index, first row first)."""
    import numpy as np

    from hf_lareid.web.app import PICKER_SIZE

    size = len(server["index"])
    rows = sorted(set(np.linspace(0, size - 1, num=min(PICKER_SIZE, size)).round().astype(int).tolist()))
    return rows[position]


def test_compare_gives_the_verdict_and_the_calibrated_false_match_rate(page, server, tmp_path):
    file, _, _ = gallery_image(server, 1)
    page.click("button[role=tab]:has-text('Compare')")
    page.locator("#compare-a input[type=file]").set_input_files(file)
    page.locator("#compare-b input[type=file]").set_input_files(file)
    page.locator("#compare-a img").wait_for()
    page.locator("#compare-b img").wait_for()
    page.click("#compare-button")
    page.locator("#compare-verdict h2").wait_for()
    assert page.inner_text("#compare-verdict h2") == "same person"
    text = page.inner_text("#compare-verdict")
    assert "cosine similarity 1.000" in text and "calibrated at a false-match rate of" in text
    save_screenshot(page, tmp_path, "web_app_compare.png")


def test_bad_uploads_get_a_visible_message_not_a_traceback(page, server, tmp_path):
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(Path(gallery_image(server, 0)[0]).read_bytes()[:300])
    page.locator("#query-image input[type=file]").set_input_files(str(damaged))
    page.click("#search-button")
    toast = page.locator(".toast-body", has_text="not a readable image")
    toast.wait_for()
    assert UNREADABLE.format(name="the query image") in toast.inner_text()
    assert "Traceback" not in page.content()

    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    page.locator("#query-image input[type=file]").set_input_files(str(notes))
    page.locator(".toast-body", has_text="notes.txt").wait_for()  # refused before it is sent
    assert "Traceback" not in page.content()


def test_the_server_connects_to_nothing_but_itself(page, server):
    """Every socket the server opened or name it looked up (logged by an audit hook) is this machine."""
    log = server["network_log"]
    entries = log.read_text().splitlines() if log.is_file() else []
    hosts = {entry.split(" ", 1)[1] for entry in entries}
    assert hosts <= LOCAL_HOSTS, hosts
