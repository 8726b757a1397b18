"""`lareid index --backend qdrant` on a tiny generated set: `lareid search`, `--remove` and the web service read the
backend the index folder records."""

import json
from pathlib import Path

import pytest

pytest.importorskip("qdrant_client")

from cli_helpers import assert_one_line_error, run_cli, run_index, run_search, tiny_market

from hf_lareid.retrieval import GalleryIndex, QdrantGalleryIndex
from hf_lareid.web.service import ReIDService


def test_qdrant_index_search_remove_and_serve(tiny_model_dir, tmp_path, capsys):
    market_dir = tiny_market(tmp_path / "market", num_ids=6, num_cameras=2)
    index_dir = tmp_path / "index"
    status, out, _ = run_index(
        tiny_model_dir, market_dir, index_dir, "--backend", "qdrant", "--batch_size", 4, capsys=capsys
    )
    assert status == 0, out
    gallery_files = sorted((market_dir / "bounding_box_test").glob("*.jpg"))
    index = GalleryIndex.load(index_dir)
    assert isinstance(index, QdrantGalleryIndex) and len(index) == len(gallery_files) == 3 * 2
    assert sorted(p.name for p in index_dir.iterdir()) == ["gallery_config.json", "qdrant_storage"]
    assert sorted(Path(index.resolve_path(path)) for path in index.paths) == gallery_files

    query, hits_json = gallery_files[2], tmp_path / "hits.json"
    status, _, _ = run_search(index_dir, query, "--top_k", 3, "--output_json", hits_json, capsys=capsys)
    best = json.loads(hits_json.read_text())["results"][0]["matches"]
    assert status == 0 and best[0]["path"] == str(query) and best[0]["score"] == pytest.approx(1.0, abs=1e-4)

    camera = index.camera_ids[index.paths.index(str(query.relative_to(market_dir)))]
    status, _, _ = run_search(
        index_dir, query, "--top_k", 3, "--query_camera", camera, "--output_json", hits_json, capsys=capsys
    )
    others = json.loads(hits_json.read_text())["results"][0]["matches"]
    assert status == 0 and others and all(match["camera_id"] != camera for match in others)

    service = ReIDService.load(index_dir, model=str(tiny_model_dir))  # what `lareid serve` opens
    assert service.search(str(query), top_k=2)["hits"][0]["file"] == str(query)

    removed = str(query.relative_to(market_dir))
    status, out, _ = run_cli("index", "--index_dir", index_dir, "--remove", "--paths", removed, capsys=capsys)
    assert status == 0 and "removed 1 entries" in out
    status, _, _ = run_search(index_dir, query, "--top_k", 5, "--output_json", hits_json, capsys=capsys)
    paths = [match["path"] for match in json.loads(hits_json.read_text())["results"][0]["matches"]]
    assert status == 0 and len(paths) == 5 and str(query) not in paths
    status, out, _ = run_cli("index", "--index_dir", index_dir, "--verify", capsys=capsys)
    assert status == 0 and "vectors live in Qdrant" in out and "every file" not in out

    status, _, err = run_index(tiny_model_dir, market_dir, market_dir, "--backend", "qdrant", capsys=capsys)
    assert_one_line_error(status, err, "not a gallery index")
