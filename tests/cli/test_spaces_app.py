"""`spaces/app.py`: the Space finds its index and model from environment variables."""

import importlib.util
from pathlib import Path

import pytest

SPACE_APP = Path(__file__).resolve().parents[2] / "spaces" / "app.py"


@pytest.fixture
def space_app():
    spec = importlib.util.spec_from_file_location("space_app", SPACE_APP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines functions only: nothing is launched on import
    return module


def test_the_space_reads_a_local_index_or_downloads_one_from_the_hub(space_app, monkeypatch, tmp_path):
    monkeypatch.delenv("LAREID_INDEX_REPO", raising=False)
    monkeypatch.setenv("LAREID_INDEX_DIR", str(tmp_path / "index"))
    assert space_app.index_folder() == tmp_path / "index"

    calls = []

    def fake_snapshot_download(repo_id, repo_type):
        calls.append((repo_id, repo_type))
        return str(tmp_path / "snapshot")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.delenv("LAREID_INDEX_DIR")
    monkeypatch.setenv("LAREID_INDEX_REPO", "user/market-index")
    monkeypatch.setenv("LAREID_INDEX_SUBFOLDER", "gallery_index")
    assert space_app.index_folder() == tmp_path / "snapshot" / "gallery_index"
    assert calls == [("user/market-index", "dataset")]

    monkeypatch.delenv("LAREID_INDEX_REPO")
    with pytest.raises(SystemExit, match="exactly one of LAREID_INDEX_DIR"):
        space_app.index_folder()


def test_the_space_serves_the_index_with_the_named_model(space_app, monkeypatch, tiny_model_dir, tmp_path):
    from hf_lareid.embedding import model_fingerprint
    from hf_lareid.modeling_lareid import LATransformerForReID
    from hf_lareid.retrieval import GalleryIndex

    model = LATransformerForReID.from_pretrained(tiny_model_dir)
    GalleryIndex(
        model.config.embedding_dim,
        model_reference="user/not-on-this-machine",
        model_fingerprint=model_fingerprint(model),
    ).save(tmp_path / "index")
    monkeypatch.delenv("LAREID_INDEX_REPO", raising=False)
    monkeypatch.setenv("LAREID_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("LAREID_MODEL", str(tiny_model_dir))
    service = space_app.load_service()
    assert service.model_reference == str(tiny_model_dir) and len(service.index) == 0
