"""Bad input gets one clear line naming the file and the fix (exit 1, no traceback), through `lareid` and the API.

Decompression bombs, missing model names offline, damaged `model.safetensors`, files that are no PyTorch
checkpoint, bad resume checkpoints, and pipeline inputs that are empty or arrays. (`market_dir` comes from
tests/conftest.py.)
"""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import (
    QUICK_TRAINING,
    assert_one_line_error,
    flags,
    run_cli,
    run_evaluate,
    run_index,
    run_train,
)
from transformers import pipeline

from hf_lareid import LATransformerForReID
from hf_lareid.convert_original import ConversionError, convert_original_checkpoint
from hf_lareid.data import ReIDDataError, load_reid_dataset
from hf_lareid.utils.images import ImageReadError, load_rgb
from hf_lareid.utils.integrity import DamagedFileError, check_trainer_checkpoint, resolve_resume_checkpoint


# ------------------------------------------------------------------ helpers
def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_bomb_png(path: Path, side: int = 20000) -> Path:
    """A 100-byte PNG whose header says `side` x `side` pixels (400 M for 20000): PIL refuses it on open."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit grey
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )
    return path


def damage(weights: Path, how: str) -> None:
    data = weights.read_bytes()
    if how == "zero-byte":
        weights.write_bytes(b"")
    elif how == "truncated-header":
        weights.write_bytes(data[:100])
    elif how == "truncated-data":
        weights.write_bytes(data[: len(data) - 500])
    elif how == "header-damaged":
        (length,) = struct.unpack("<Q", data[:8])
        header = data[8 : 8 + length].replace(b'"dtype"', b'"dtypo"', 1)
        weights.write_bytes(data[:8] + header + data[8 + length :])


# ------------------------------------------------------------------ decompression bombs
def test_a_bomb_in_a_split_names_the_file(market_dir, tmp_path, tiny_model_dir, capsys):
    data_dir = tmp_path / "market"
    shutil.copytree(market_dir, data_dir)
    bomb = write_bomb_png(data_dir / "bounding_box_test" / "0002_c1s1_000999_09.png")
    with pytest.raises(ReIDDataError, match=r"0002_c1s1_000999_09\.png is too large.*decompression bomb"):
        load_reid_dataset("market1501", data_dir=data_dir, cache_dir=tmp_path / "cache")
    status, _, err = run_index(tiny_model_dir, data_dir, tmp_path / "index", capsys=capsys)
    assert_one_line_error(status, err, bomb.name, "decompression bomb", "MAX_IMAGE_PIXELS")
    assert not (tmp_path / "index").exists()


def test_a_bomb_given_to_the_pipeline_names_the_file(tmp_path, tiny_model_dir):
    bomb = write_bomb_png(tmp_path / "bomb.png")
    with pytest.raises(ImageReadError, match=r"bomb\.png is too large"):
        load_rgb(bomb)
    embedder = pipeline("lareid-embedding", model=str(tiny_model_dir))
    with pytest.raises(ImageReadError, match=r"bomb\.png.*decompression bomb"):
        embedder(str(bomb))


# ------------------------------------------------------------------ model names and damaged weights
def test_a_missing_bare_model_name_says_it_is_not_local_and_needs_network(market_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = run_index("no-such-model", market_dir, tmp_path / "index", capsys=capsys)
    line = assert_one_line_error(status, err, "'no-such-model'", "does not exist locally", "needs network")
    assert "huggingface.co" not in line
    with pytest.raises(FileNotFoundError, match="does not exist locally.*needs network"):
        LATransformerForReID.from_pretrained("no-such-model")


@pytest.mark.parametrize("how", ["zero-byte", "truncated-header", "truncated-data", "header-damaged"])
def test_damaged_weights_are_named(tiny_model_dir, market_dir, tmp_path, capsys, how):
    weights = tiny_model_dir / "model.safetensors"
    damage(weights, how)
    status, _, err = run_evaluate(tiny_model_dir, market_dir, capsys=capsys)
    # The recorded SHA-256 (checked first by the CLI) or the header check names it, both say to save again.
    assert_one_line_error(status, err, str(weights), "damaged", "ave the model again")
    with pytest.raises(DamagedFileError, match=r"model\.safetensors is damaged"):
        LATransformerForReID.from_pretrained(tiny_model_dir)
    # transformers' pipeline() wraps every loading error in its own ValueError, which quotes ours.
    with pytest.raises(ValueError, match=r"model\.safetensors is damaged"):
        pipeline("lareid-embedding", model=str(tiny_model_dir))


# ------------------------------------------------------------------ convert-original on files that are no checkpoint
@pytest.mark.parametrize(
    "content, found",
    [
        (b"epoch 12: rank-1 0.93\n", "a text file"),
        (b"", "an empty file"),
        (bytes(range(7, 250)) * 20, "bytes in no format PyTorch writes"),
        (b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01x\x94K\x01s.", "a plain Python pickle"),
    ],
    ids=["text", "empty", "junk", "pickle"],
)
def test_convert_original_refuses_files_that_are_no_checkpoint(tmp_path, capsys, content, found):
    path = tmp_path / "net_best.pth"
    path.write_bytes(content)
    status, _, err = run_cli("convert-original", path, tmp_path / "out", capsys=capsys)
    assert_one_line_error(status, err, str(path), "is not a PyTorch checkpoint", found)
    with pytest.raises(ConversionError, match="is not a PyTorch checkpoint"):
        convert_original_checkpoint(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_convert_original_names_a_truncated_checkpoint(tmp_path, capsys):
    path = tmp_path / "net_best.pth"
    torch.save({"model.cls_token": torch.zeros(1, 1, 768)}, path)
    path.write_bytes(path.read_bytes()[:300])
    status, _, err = run_cli("convert-original", path, tmp_path / "out", capsys=capsys)
    assert_one_line_error(status, err, str(path), "damaged", "truncated")


# ------------------------------------------------------------------ resume checkpoints
FAST = [*QUICK_TRAINING, *flags(per_device_train_batch_size=4, max_steps=4, report_to="none")]


def test_resume_true_without_a_checkpoint(tmp_path, capsys):
    out = tmp_path / "out"
    status, _, err = run_train(out, tmp_path / "synthetic", *FAST, "--resume_from_checkpoint", "True", capsys=capsys)
    assert_one_line_error(status, err, "--resume_from_checkpoint True", "no checkpoint-* folder", "without")
    assert not (out / "model.safetensors").exists()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        resolve_resume_checkpoint(True, out)
    assert resolve_resume_checkpoint(None, out) is None and resolve_resume_checkpoint("False", out) is None


def fake_checkpoint(folder: Path, tiny_model_dir: Path, step: int) -> Path:
    """A checkpoint folder as the Trainer writes it: weights, optimizer, scheduler, RNG state, trainer state last."""
    checkpoint = folder / f"checkpoint-{step}"
    checkpoint.mkdir(parents=True)
    shutil.copy(tiny_model_dir / "model.safetensors", checkpoint)
    shutil.copy(tiny_model_dir / "config.json", checkpoint)
    model = LATransformerForReID.from_pretrained(tiny_model_dir)
    torch.save(torch.optim.AdamW(model.parameters()).state_dict(), checkpoint / "optimizer.pt")
    torch.save({"last_epoch": step}, checkpoint / "scheduler.pt")
    torch.save({"cpu": torch.get_rng_state()}, checkpoint / "rng_state.pth")
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return checkpoint


def test_a_truncated_optimizer_state_is_named_on_resume(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "out"
    checkpoint = fake_checkpoint(out, tiny_model_dir, step=2)
    check_trainer_checkpoint(checkpoint)  # whole: passes
    optimizer = checkpoint / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:200])
    with pytest.raises(DamagedFileError, match=r"optimizer\.pt is damaged"):
        check_trainer_checkpoint(checkpoint)
    status, _, err = run_train(
        out, tmp_path / "synthetic", *FAST, "--resume_from_checkpoint", checkpoint, capsys=capsys
    )
    assert_one_line_error(status, err, str(optimizer), "damaged", "earlier checkpoint")
    status, _, err = run_train(
        out, tmp_path / "synthetic", *FAST, "--resume_from_checkpoint", out / "checkpoint-9", capsys=capsys
    )
    assert_one_line_error(status, err, "checkpoint-9", "does not exist")


def test_resume_true_skips_a_checkpoint_left_incomplete_by_a_kill(tmp_path, tiny_model_dir, caplog):
    out = tmp_path / "out"
    fake_checkpoint(out, tiny_model_dir, step=4)
    incomplete = fake_checkpoint(out, tiny_model_dir, step=10)  # numerically after checkpoint-4, not -9 < -10
    (incomplete / "trainer_state.json").unlink()  # the Trainer writes it last: killed while saving
    assert resolve_resume_checkpoint("True", out) == str(out / "checkpoint-4")
    assert "Skipping" in caplog.text and "checkpoint-10" in caplog.text
    with pytest.raises(DamagedFileError, match="incomplete checkpoint"):
        check_trainer_checkpoint(incomplete)
    (out / "checkpoint-4" / "trainer_state.json").unlink()
    with pytest.raises(FileNotFoundError, match="only incomplete"):
        resolve_resume_checkpoint("True", out)


# ------------------------------------------------------------------ pipeline inputs
def test_pipeline_empty_list_and_arrays(tiny_model_dir, random_images):
    embedder = pipeline("lareid-embedding", model=str(tiny_model_dir))
    with pytest.raises(ValueError, match="empty list"):
        embedder([])
    array = np.asarray(random_images[0])
    np.testing.assert_allclose(embedder(array, return_tensors="np"), embedder(random_images[0], return_tensors="np"))
    big = np.arange(4 * 300 * 200 * 3, dtype=np.float32).reshape(4, 300, 200, 3)
    with pytest.raises(ValueError) as error:
        embedder(big)
    assert "shape (4, 300, 200, 3)" in str(error.value) and len(str(error.value)) < 300
    with pytest.raises(TypeError, match="got int"):
        embedder(12)
