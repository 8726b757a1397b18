"""`lareid evaluate / index / search --picture` on the loaders beside Market-1501 (file names renamed per layout)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_evaluate, run_index, run_search, save_interrupted_index, tiny_market
from PIL import Image

from hf_lareid.data import ReIDDataError, parse_market1501_name
from hf_lareid.retrieval import GalleryIndex

RENAMES = {  # (person, camera, number) -> a file name in each layout
    "dukemtmcreid": lambda person, camera, number: f"{person:04d}_c{camera}_f{number:07d}.jpg",
    "cuhk03_np": lambda person, camera, number: f"{person:04d}_c{camera}_{number}.png",
}


def _renamed_copy(source: Path, target: Path, name: str) -> Path:
    """`source` (Market layout) with every file renamed into the `name` layout; CUHK03-np sits in ``detected/``."""
    image_root = target / "detected" if name == "cuhk03_np" else target
    for number, path in enumerate(sorted(source.rglob("*.jpg"))):
        person, camera = parse_market1501_name(path)
        destination = image_root / path.parent.name / RENAMES[name](person, camera, number)
        destination.parent.mkdir(parents=True, exist_ok=True)
        Image.open(path).save(destination)
    return target


@pytest.fixture(scope="module")
def market_dir(tmp_path_factory):
    return tiny_market(tmp_path_factory.mktemp("market"), num_ids=8, num_cameras=2)


@pytest.mark.parametrize("name", sorted(RENAMES))
def test_evaluate_index_and_search_picture(name, market_dir, tiny_model_dir, tmp_path, capsys):
    data_dir = _renamed_copy(market_dir, tmp_path / name, name)
    if name == "cuhk03_np":  # the CLI reads a variant by its folder
        data_dir = data_dir / "detected"
    metrics = tmp_path / "metrics.json"
    assert run_evaluate(tiny_model_dir, data_dir, "--output_json", metrics, dataset=name, capsys=capsys)[0] == 0
    result = json.loads(metrics.read_text())["results"][0]
    assert result["num_queries"] == 4 * 2 and 0.0 <= result["mAP"] <= 1.0

    index_dir = tmp_path / "index"
    assert run_index(tiny_model_dir, data_dir, index_dir, dataset=name, capsys=capsys)[0] == 0
    index = GalleryIndex.load(index_dir)
    assert index.data_dir == str(data_dir) and not any(Path(path).is_absolute() for path in index.paths)

    query = Path(index.resolve_path(index.paths[0]))
    picture, hits = tmp_path / "ranks.png", tmp_path / "hits.json"
    assert (
        run_search(index_dir, query, "--top_k", 3, "--picture", picture, "--output_json", hits, capsys=capsys)[0] == 0
    )
    assert json.loads(hits.read_text())["results"][0]["matches"][0]["path"] == str(query)  # resolved: it opens
    with Image.open(picture) as image:
        assert image.format == "PNG" and image.width > image.height > 0


def test_search_reads_query_identities_with_the_indexed_sets_file_names(market_dir, tiny_model_dir, tmp_path, capsys):
    """A DukeMTMC-reID index: the query's id comes from Duke's name scheme (Market's would not parse it), so the
    picture frames its own gallery image as the right identity."""
    from hf_lareid.analysis.pictures import BORDER_WIDTH, RIGHT_COLOR

    data_dir, index_dir, picture = (
        _renamed_copy(market_dir, tmp_path / "duke", "dukemtmcreid"),
        tmp_path / "index",
        tmp_path / "ranks.png",
    )
    assert run_index(tiny_model_dir, data_dir, index_dir, dataset="dukemtmcreid", capsys=capsys)[0] == 0
    index = GalleryIndex.load(index_dir)
    assert index.dataset == "dukemtmcreid"
    query = Path(index.resolve_path(index.paths[int(np.argmax(index.person_ids))]))  # a real person, not a distractor
    with pytest.raises(ReIDDataError):
        parse_market1501_name(query)
    status, out, _ = run_search(index_dir, query, "--top_k", 1, "--picture", picture, capsys=capsys)
    assert status == 0
    assert "identities unknown" not in out
    pixels = np.asarray(Image.open(picture).convert("RGB"))
    assert (np.abs(pixels.reshape(-1, 3).astype(int) - RIGHT_COLOR).sum(axis=1) == 0).sum() >= 4 * BORDER_WIDTH


def test_search_on_a_set_whose_names_carry_no_identity_says_so_once(market_dir, tiny_model_dir, tmp_path, capsys):
    from hf_lareid.analysis.pictures import RIGHT_COLOR, WRONG_COLOR

    people = tmp_path / "people"
    for path in sorted(market_dir.rglob("*.jpg")):
        person, camera = parse_market1501_name(path)
        if person > 0:
            (people / f"{person:03d}").mkdir(parents=True, exist_ok=True)
            shutil.copy(path, people / f"{person:03d}" / f"c{camera}_{path.parent.name}_{path.name}")
    index_dir, picture = tmp_path / "index", tmp_path / "ranks.png"
    assert run_index(tiny_model_dir, people, index_dir, dataset="identity_folders", capsys=capsys)[0] == 0
    query = Path(GalleryIndex.load(index_dir).resolve_path(GalleryIndex.load(index_dir).paths[0]))
    status, out, _ = run_search(index_dir, query, "--top_k", 2, "--picture", picture, capsys=capsys)
    assert status == 0
    assert out.count("query identities unknown (identity_folders file names carry no person id)") == 1
    assert f"path={query}" in out
    pixels = np.asarray(Image.open(picture).convert("RGB"))
    assert not any(
        (pixels == np.array(color, dtype=np.uint8)).all(axis=-1).any() for color in (RIGHT_COLOR, WRONG_COLOR)
    )


def test_a_bad_msmt17_folder_is_one_line(tiny_model_dir, market_dir, capsys):
    status, _, err = run_evaluate(tiny_model_dir, market_dir, dataset="msmt17", capsys=capsys)
    assert_one_line_error(status, err, "MSMT17 image folder (test or mask_test_v2)")


def test_resuming_an_index_of_absolute_paths_adds_no_duplicates(market_dir, tiny_model_dir, tmp_path, capsys):
    """An index saved before paths were relative (absolute paths, no data_dir) resumes without re-adding images."""
    index_dir = tmp_path / "index"
    assert run_index(tiny_model_dir, market_dir, index_dir, capsys=capsys)[0] == 0
    complete = GalleryIndex.load(index_dir)
    save_interrupted_index(complete, index_dir, list(range(5)), [complete.resolve_path(p) for p in complete.paths[:5]])
    assert run_index(tiny_model_dir, market_dir, index_dir, capsys=capsys)[0] == 0
    resumed = GalleryIndex.load(index_dir)
    assert resumed.data_dir == str(market_dir) and len(resumed) == len(complete)
    assert sorted(resumed.resolve_path(path) for path in resumed.paths) == sorted(
        complete.resolve_path(path) for path in complete.paths
    )
