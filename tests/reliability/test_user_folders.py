"""What users made stays: train's --output_dir, clear_reid_cache and generate_synthetic_reid(overwrite=True)."""

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_cli, snapshot

from hf_lareid.data import clear_reid_cache, generate_synthetic_reid, load_reid_dataset
from hf_lareid.evaluation import evaluate_reid
from hf_lareid.scripts.train import check_output_dir, parse_arguments

SMALL = dict(num_ids=4, num_cameras=2, images_per_camera=2, image_size=(32, 16))


def trained_folder(folder):
    """A folder as `lareid train` leaves it: a model, two checkpoints and the user's own notes."""
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"old weights")
    (folder / "config.json").write_text("{}")
    (folder / "notes.md").write_text("mine")
    for step in (2, 4):
        (folder / f"checkpoint-{step}").mkdir()
        (folder / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    return folder


def test_train_refuses_an_output_dir_holding_a_model(tmp_path, capsys):
    folder = trained_folder(tmp_path / "out")
    before = snapshot(folder)
    status, _, err = run_cli("train", "--output_dir", folder, "--max_steps", 1, capsys=capsys)
    assert_one_line_error(status, err, str(folder), "--overwrite_output_dir", "--resume_from_checkpoint")
    assert snapshot(folder) == before
    status, _, err = run_cli("train", "--output_dir", folder, "--resume_from_checkpoint", "False", capsys=capsys)
    assert_one_line_error(status, err, str(folder), "--overwrite_output_dir")  # "False" asks for no resume
    assert snapshot(folder) == before


def test_overwrite_output_dir_removes_old_checkpoints_but_not_the_users_files(tmp_path):
    folder = trained_folder(tmp_path / "out")
    check_output_dir(parse_arguments(["--output_dir", str(folder), "--resume_from_checkpoint", "True"])[2])
    assert (folder / "checkpoint-4").is_dir()  # resuming keeps everything
    check_output_dir(parse_arguments(["--output_dir", str(folder), "--overwrite_output_dir", "True"])[2])
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "notes.md"]
    check_output_dir(parse_arguments(["--output_dir", str(tmp_path / "new")])[2])  # a new folder is fine


def test_clear_reid_cache_removes_only_its_builds(tmp_path):
    cache = tmp_path / "cache"
    load_reid_dataset("synthetic", data_dir=tmp_path / "synthetic", cache_dir=cache, **SMALL)
    (cache / "my-file.txt").write_text("mine")
    removed = clear_reid_cache(cache)
    assert {p.name for p in removed} >= {"synthetic"} and sorted(p.name for p in cache.iterdir()) == ["my-file.txt"]
    assert (tmp_path / "synthetic" / "bounding_box_train").is_dir()  # the source folder stays
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"jpeg")
    with pytest.raises(ValueError, match="not a re-ID dataset cache"):
        clear_reid_cache(photos)
    assert (photos / "holiday.jpg").read_bytes() == b"jpeg"
    with pytest.raises(ValueError, match="not a re-ID dataset cache"):
        clear_reid_cache(cache)  # only the user's file is left
    assert (cache / "my-file.txt").is_file()


def test_synthetic_overwrite_refuses_a_folder_it_did_not_write(tmp_path):
    mine = tmp_path / "mine"
    (mine / "query").mkdir(parents=True)
    (mine / "query" / "0001_c1s1_000000_01.jpg").write_bytes(b"my own photo")
    before = snapshot(mine)
    with pytest.raises(FileExistsError, match="not made by generate_synthetic_reid"):
        generate_synthetic_reid(mine, overwrite=True, **SMALL)
    assert snapshot(mine) == before
    root = generate_synthetic_reid(tmp_path / "generated", **SMALL)
    first = snapshot(root)
    assert snapshot(generate_synthetic_reid(root, overwrite=True, **SMALL)) == first  # its own output: redrawn


def test_evaluate_reid_refuses_zero_and_non_unit_vectors():
    gallery = np.eye(4, dtype=np.float32)
    ids, cams = np.arange(4), np.array([1, 2, 1, 2])
    queries = gallery.copy()
    queries[1] = 0.0
    with pytest.raises(ValueError, match="all-zero"):
        evaluate_reid(queries, gallery, ids, ids, cams, 3 - cams)
    with pytest.raises(ValueError, match="unit-norm"):
        evaluate_reid(gallery * 2, gallery, ids, ids, cams, 3 - cams, norm_tolerance=1e-3)
    assert evaluate_reid(gallery, gallery, ids, ids, cams, 3 - cams, norm_tolerance=1e-3)["rank1"] == 1.0


def test_cards_and_pictures_get_the_users_normal_mode(tmp_path):
    import os
    import stat

    from hf_lareid.analysis.pictures import plot_cmc_curves
    from hf_lareid.hub.modelcard import write_model_card

    previous = os.umask(0o022)
    try:
        card = write_model_card(tmp_path / "model", setup="tiny", datasets=["synthetic"], eval_dataset="synthetic")
        picture = plot_cmc_curves({"model": {"cmc": np.linspace(0.5, 1.0, 10), "mAP": 0.4}}, tmp_path / "cmc.png", 10)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(card).st_mode) == stat.S_IMODE(os.stat(picture).st_mode) == 0o644
    assert sorted(os.listdir(tmp_path / "model")) == ["README.md"]  # no temporary file left
