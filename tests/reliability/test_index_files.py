"""`lareid index` / GalleryIndex never replace what is not an index, detect edits, lock, and recover from crashes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_cli, small_tmpfs, snapshot

from hf_lareid import Provenance
from hf_lareid.retrieval import CorruptIndexError, EmbeddingSettingsMismatchError, GalleryIndex
from hf_lareid.utils.io import FAULT_ENV


def unit_vectors(num, dim=16, seed=0):
    vectors = np.random.default_rng(seed).normal(size=(num, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def filled_index(num=20, dim=16):
    index = GalleryIndex(dim, model_reference="m", model_fingerprint="fp", embedding_settings={"flip": False})
    index.add(
        unit_vectors(num, dim),
        person_ids=np.arange(num),
        camera_ids=np.zeros(num),
        paths=[f"{i}.jpg" for i in range(num)],
    )
    return index


def index_args(model_dir, data_dir, index_dir, *extra):
    return ["index", model_dir, "--dataset", "market1501", "--data_dir", data_dir, "--index_dir", index_dir, *extra]


def assert_equal_indexes(first, second):
    assert first.paths == second.paths and len(first) == len(second)
    np.testing.assert_array_equal(
        first._index.reconstruct_n(0, len(first)), second._index.reconstruct_n(0, len(second))
    )


# ----------------------------------------------------------------------------------------- never replaced
@pytest.mark.parametrize("target", ["model folder", "photo folder", "data_dir itself", "plain file", "."])
def test_index_refuses_a_path_that_is_not_an_index(target, tiny_model_dir, market_dir, tmp_path, monkeypatch, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.chdir(photos)
    index_dir = {
        "model folder": tiny_model_dir,
        "photo folder": photos,
        "data_dir itself": market_dir,
        "plain file": tmp_path / "notes.txt",
        ".": ".",
    }[target]
    watched = tmp_path / "notes.txt" if target == "plain file" else photos if target == "." else index_dir
    before = snapshot(watched) if watched.is_dir() else watched.read_bytes()
    status, _, err = run_cli(*index_args(tiny_model_dir, market_dir, index_dir), capsys=capsys)
    assert_one_line_error(status, err, "not a gallery index")
    assert (snapshot(watched) if watched.is_dir() else watched.read_bytes()) == before
    with pytest.raises(FileExistsError, match="not a gallery index"):
        filled_index().save(index_dir)


def test_an_index_holding_the_users_files_is_not_swapped_away(tmp_path):
    filled_index().save(tmp_path / "gallery")
    (tmp_path / "gallery" / "README.txt").write_text("my notes about this index")
    with pytest.raises(FileExistsError, match="README.txt"):
        filled_index(num=5).save(tmp_path / "gallery")
    assert (tmp_path / "gallery" / "README.txt").is_file() and len(GalleryIndex.load(tmp_path / "gallery")) == 20


# ------------------------------------------------------------------------------------------ tampered files
@pytest.mark.parametrize("edit", ["fingerprint", "model path", "drop sha256", "misspell sha256", "drop config hash"])
def test_an_edited_config_is_refused(edit, tmp_path):
    filled_index().save(tmp_path / "gallery")
    path = tmp_path / "gallery" / "gallery_config.json"
    config = json.loads(path.read_text())
    if edit == "fingerprint":
        config["model_fingerprint"] = "another model"
    elif edit == "model path":
        config["model_reference"] = "/elsewhere/model"
    elif edit == "drop sha256":
        del config["sha256"]
    elif edit == "misspell sha256":
        config["sha265"] = config.pop("sha256")
    else:
        del config["config_sha256"]
    path.write_text(json.dumps(config, indent=2))
    with pytest.raises(CorruptIndexError, match="gallery_config.json"):
        GalleryIndex.load(tmp_path / "gallery")


def test_a_flipped_byte_in_the_index_is_refused_even_with_checks_removed(tmp_path):
    filled_index().save(tmp_path / "gallery")
    data = bytearray((tmp_path / "gallery" / "index.faiss").read_bytes())
    data[-5] ^= 0x01
    (tmp_path / "gallery" / "index.faiss").write_bytes(bytes(data))
    with pytest.raises(CorruptIndexError, match="index.faiss is damaged"):
        GalleryIndex.load(tmp_path / "gallery")


# ------------------------------------------------------------------------------------- embedding settings
def test_index_built_with_flip_refuses_queries_without_it(tiny_model_dir, market_dir, tmp_path, capsys):
    index_dir = tmp_path / "index"
    assert run_cli(*index_args(tiny_model_dir, market_dir, index_dir, "--flip"), capsys=capsys)[0] == 0
    assert GalleryIndex.load(index_dir).embedding_settings["flip"] is True
    query = next((market_dir / "query").glob("*.jpg"))
    status, _, err = run_cli("search", "--index_dir", index_dir, query, capsys=capsys)
    assert_one_line_error(status, err, "flip")
    assert run_cli("search", "--index_dir", index_dir, query, "--flip", capsys=capsys)[0] == 0
    status, _, err = run_cli(*index_args(tiny_model_dir, market_dir, index_dir), capsys=capsys)  # resume without
    assert_one_line_error(status, err, "flip")


def test_image_processor_settings_are_refused_and_runtime_only_warns(caplog):
    index = GalleryIndex(
        16,
        embedding_settings={"flip": False, "processor_size": {"height": 64, "width": 32}},
        runtime_settings={"bf16": False, "torch": "2.13.0", "device": "cpu"},
    )
    index.add(unit_vectors(4))
    with pytest.raises(EmbeddingSettingsMismatchError, match="processor_size"):
        index.search(
            unit_vectors(1),
            provenance=Provenance(embedding={"flip": False, "processor_size": {"height": 128, "width": 64}}),
        )
    result = index.search(
        unit_vectors(1), k=2, provenance=Provenance(runtime={"bf16": True, "torch": "2.13.0", "device": "cpu"})
    )
    assert result.indices.shape == (1, 2) and "bf16" in caplog.text


def test_a_failed_add_changes_nothing():
    index = GalleryIndex(16)
    with pytest.raises(ValueError, match="must match"):
        index.add(unit_vectors(3), person_ids=[1, 2], camera_ids=[0, 0, 0], paths=["a", "b", "c"])
    assert len(index) == 0 and index.person_ids is None
    index.add(unit_vectors(3), person_ids=[1, 2, 3])  # other fields than the failed call: accepted
    with pytest.raises(ValueError, match="must match"):
        index.add(unit_vectors(2, seed=1), person_ids=[4])
    assert len(index) == 3 and index.person_ids.tolist() == [1, 2, 3]


# ---------------------------------------------------------------------------------------- full disk
def test_full_disk_during_a_save_keeps_the_previous_index(tiny_model_dir, market_dir, tmp_path, monkeypatch, capsys):
    index_dir = tmp_path / "index"
    assert run_cli(*index_args(tiny_model_dir, market_dir, index_dir), capsys=capsys)[0] == 0
    before, previous = snapshot(index_dir), GalleryIndex.load(index_dir)
    monkeypatch.setenv(FAULT_ENV, "write:metadata.npz")  # the resumed run saves again at its end
    status, _, err = run_cli(*index_args(tiny_model_dir, market_dir, index_dir), capsys=capsys)
    assert_one_line_error(status, err, "No space left")
    assert snapshot(index_dir) == before and sorted(p.name for p in tmp_path.glob(".index.*")) == [".index.lock"]
    assert_equal_indexes(GalleryIndex.load(index_dir), previous)


def test_full_tmpfs_during_a_save_keeps_the_previous_index(tmp_path):
    index = GalleryIndex(64)
    index.add(unit_vectors(400, 64), paths=[f"{i}.jpg" for i in range(400)])
    index.save(tmp_path / "probe")
    size = sum(path.stat().st_size for path in (tmp_path / "probe").iterdir())
    with small_tmpfs(tmp_path / "disk", int(size * 1.5)) as disk:
        index.save(disk / "gallery")
        before = snapshot(disk / "gallery")
        index.add(unit_vectors(10, 64, seed=1), paths=[f"new{i}.jpg" for i in range(10)])
        with pytest.raises(RuntimeError, match="No space left"):  # faiss reports the write error
            index.save(disk / "gallery")
        assert snapshot(disk / "gallery") == before
        assert sorted(os.listdir(disk)) == [".gallery.lock", "gallery"]  # the temporary copy is gone
        assert len(GalleryIndex.load(disk / "gallery")) == 400


# ------------------------------------------------------------------------------- two writers, kill -9
def test_a_second_writer_exits_with_one_line(tiny_model_dir, market_dir, tmp_path):
    index_dir = tmp_path / "index"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from hf_lareid.utils.io import folder_lock\n"
            "with folder_lock(sys.argv[1]):\n    print('locked', flush=True); sys.stdin.readline()",
            str(index_dir),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"  # the first writer is mid-build
        second = subprocess.run(
            [sys.executable, "-m", "hf_lareid.cli.main", *map(str, index_args(tiny_model_dir, market_dir, index_dir))],
            capture_output=True,
            text=True,
        )
    finally:
        holder.stdin.close()
        holder.wait()
    assert second.returncode == 1 and "Traceback" not in second.stderr
    lines = [line for line in second.stderr.splitlines() if line.startswith("lareid index: error")]
    assert len(lines) == 1 and "another process is writing" in lines[0]
    assert not index_dir.exists()


def test_kill_at_a_checkpoint_and_between_the_renames_then_the_next_run_recovers(
    tiny_model_dir, market_dir, tmp_path, capsys, caplog
):
    index_dir = tmp_path / "index"
    command = [
        sys.executable,
        "-m",
        "hf_lareid.cli.main",
        *map(str, index_args(tiny_model_dir, market_dir, index_dir, "--batch_size", 2, "--checkpoint_every", 4)),
    ]
    killed = subprocess.run(command, env={**os.environ, FAULT_ENV: "index:checkpoint@1=kill"}, capture_output=True)
    assert killed.returncode == -9
    partial = GalleryIndex.load(index_dir)
    assert 4 <= len(partial) < 15  # the first checkpoint survived the kill
    # The resumed run is killed after moving the checkpoint aside, before renaming the new index in.
    killed = subprocess.run(command, env={**os.environ, FAULT_ENV: "swap:index=kill"}, capture_output=True)
    assert killed.returncode == -9 and not index_dir.exists()
    assert any(p.name.startswith(".index.old-") for p in tmp_path.iterdir())
    status, out, _ = run_cli(*index_args(tiny_model_dir, market_dir, index_dir), capsys=capsys)
    assert status == 0 and "resuming" in out
    assert "restored" in caplog.text and ".index.old-" in caplog.text
    final = GalleryIndex.load(index_dir)
    assert len(final) == 15 and len(set(final.paths)) == 15
    assert sorted(p.name for p in tmp_path.glob(".index*")) == [".index.lock"]
