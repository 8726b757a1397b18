"""The message leads to the fix: a full disk names the path (and leaves no half checkpoint), an unreadable image is a
permission problem, an id too large for a data set names the file and the limit."""

import os
import shutil
import subprocess
import sys

import pytest
from cli_helpers import QUICK_TRAINING, assert_one_line_error, flags, run_evaluate, run_train, small_tmpfs, snapshot

from hf_lareid.data import ReIDDataError, load_reid_dataset
from hf_lareid.utils.io import FAULT_ENV

FAST = [*QUICK_TRAINING, *flags(per_device_train_batch_size=4, report_to="none")]


def test_full_disk_while_saving_a_checkpoint_names_it_and_leaves_none(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    checkpoints = flags(max_steps=2, save_strategy="steps", save_steps=1)
    monkeypatch.setenv(FAULT_ENV, "write:model.safetensors@1")  # the disk fills while checkpoint-1 is written
    status, _, err = run_train(out, tmp_path / "synthetic", *FAST, *checkpoints, capsys=capsys)
    assert_one_line_error(status, err, "No space left on device", str(out / "checkpoint-1"), "--output_dir")
    assert not list(out.glob("checkpoint-*"))  # nothing half-written for the next run to refuse
    monkeypatch.delenv(FAULT_ENV)
    status, _, _ = run_train(out, tmp_path / "synthetic", *FAST, *checkpoints, capsys=capsys)
    assert status == 0 and (out / "model.safetensors").is_file() and (out / "README.md").is_file()
    # A run over its own earlier output keeps working, and the user's file beside it stays.
    (out / "notes.md").write_text("mine")
    status, _, _ = run_train(
        out, tmp_path / "synthetic", *FAST, *flags(max_steps=1, overwrite_output_dir=True), capsys=capsys
    )
    assert status == 0 and (out / "notes.md").read_text() == "mine"


def test_full_disk_during_evaluate_output_names_the_file(tiny_model_dir, market_dir, tmp_path, capsys):
    with small_tmpfs(tmp_path / "disk", 64 * 1024) as disk:
        descriptor = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:  # fill the disk to the last block
            while True:
                os.write(descriptor, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(descriptor)
        before = snapshot(disk)
        status, _, err = run_evaluate(tiny_model_dir, market_dir, "--output", disk / "eval.json", capsys=capsys)
        assert_one_line_error(status, err, "No space left on device", str(disk / "eval.json"))
        assert snapshot(disk) == before  # no temporary file or manifest left on the full disk


def test_a_person_id_too_large_names_the_file_and_the_limit(market_dir, tmp_path):
    data_dir = tmp_path / "market"
    shutil.copytree(market_dir, data_dir)
    source = next((data_dir / "bounding_box_test").glob("*.jpg"))
    huge = source.with_name("12345678901234567890_c1s1_000001_01.jpg")
    source.rename(huge)
    with pytest.raises(ReIDDataError) as error:
        load_reid_dataset("market1501", data_dir=data_dir, cache_dir=tmp_path / "cache")
    message = str(error.value)
    assert huge.name in message and "2,147,483,647" in message and "Renumber" in message


UNREADABLE_SCRIPT = """
import os, sys
from PIL import Image
from hf_lareid.utils.images import ImageReadError, read_image
Image.init()  # every image plugin imported while the library files are readable
os.setgid(65534); os.setuid(65534)  # nobody: the file's mode applies, as for any user but root
try:
    read_image(sys.argv[1])
except ImageReadError as error:
    print(error)
"""


def test_an_unreadable_image_is_a_permission_problem_not_a_corrupt_file(tmp_path):
    folder = tmp_path / "open"
    folder.mkdir()
    image = folder / "0001_c1s1_000001_01.jpg"
    from PIL import Image

    Image.new("RGB", (16, 32)).save(image)
    image.chmod(0o000)
    if os.geteuid() == 0:  # root reads any file: check as the unprivileged user nobody
        for parent in [folder, *folder.parents]:
            if parent == parent.parent:
                break
            if parent.stat().st_mode & 0o005 != 0o005:
                parent.chmod(parent.stat().st_mode | 0o005)
        src = os.path.join(os.path.dirname(__file__), "..", "..", "src")
        env = {**os.environ, "PYTHONPATH": os.path.abspath(src)}
        result = subprocess.run(
            [sys.executable, "-c", UNREADABLE_SCRIPT, str(image)], capture_output=True, text=True, env=env
        )
        if result.returncode != 0 and "Permission denied" in result.stderr and "hf_lareid" in result.stderr:
            pytest.skip(f"the unprivileged user cannot import the package here: {result.stderr.splitlines()[-1]}")
        message = result.stdout
    else:
        from hf_lareid.utils.images import ImageReadError, read_image

        with pytest.raises(ImageReadError) as error:
            read_image(image)
        message = str(error.value)
    assert str(image) in message and "permission denied" in message and "chmod a+r" in message
    assert "corrupt" not in message and "delete" not in message
