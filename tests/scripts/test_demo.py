"""`lareid demo --quick`: the whole demo path at toy size: data, two training stages, evaluation, index, pictures."""

import contextlib
import io
import json

import pytest
import torch
from PIL import Image

from hf_lareid import LATransformerForReID
from hf_lareid.embedding import model_fingerprint
from hf_lareid.retrieval import GalleryIndex
from hf_lareid.scripts.demo import (
    FINE_TUNED_DIR,
    INDEX_DIR,
    METRICS_FILE,
    OUTPUTS,
    PICTURES,
    PRETRAINED_DIR,
    QUICK,
    STAGES,
)
from hf_lareid.utils.output_guard import check_outputs
from hf_lareid_cli import main


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """Runs `lareid demo --quick` once for the module; returns (output folder, exit status, printed text)."""
    output_dir = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["demo", "--quick", "--output_dir", str(output_dir)])
    return output_dir, status, printed.getvalue()


def test_demo_succeeds_and_reports_every_stage(demo_run):
    output_dir, status, printed = demo_run
    assert status == 0
    metrics = json.loads((output_dir / METRICS_FILE).read_text())
    assert list(metrics["stages"]) == list(STAGES)
    for name, stage in metrics["stages"].items():
        for key in ("rank1", "rank5", "rank10", "mAP", "mINP"):
            assert 0.0 <= stage[key] <= 1.0, (name, key)
        assert stage["num_queries"] > 0
    for name in STAGES:  # the closing table has one row per model
        assert f"| {name} |" in printed


def test_demo_draws_every_picture(demo_run):
    output_dir, _, _ = demo_run
    for file_name in PICTURES.values():
        with Image.open(output_dir / file_name) as picture:
            assert picture.format == "PNG"
            assert min(picture.size) >= 100 and max(picture.size) <= 4000, (file_name, picture.size)


def test_demo_saves_loadable_models_and_a_matching_index(demo_run):
    output_dir, _, _ = demo_run
    fine_tuned = LATransformerForReID.from_pretrained(output_dir / FINE_TUNED_DIR)
    pretrained = LATransformerForReID.from_pretrained(output_dir / PRETRAINED_DIR)
    assert fine_tuned.config.num_labels != pretrained.config.num_labels  # new heads for the fine-tuning identities
    for name in ("preprocessor_config.json", "README.md"):
        assert (output_dir / FINE_TUNED_DIR / name).is_file(), name
    index = GalleryIndex.load(output_dir / INDEX_DIR)
    assert len(index) > 0
    assert index.model_fingerprint == model_fingerprint(fine_tuned)
    assert index.model_fingerprint != model_fingerprint(pretrained)


def test_demo_index_records_how_it_embedded_and_serve_checks_it(demo_run):
    """The demo's index records its encoder's provenance like `lareid index`: a query embedded otherwise is refused."""
    from hf_lareid import ReIDEncoder
    from hf_lareid.retrieval import EmbeddingSettingsMismatchError
    from hf_lareid.web.service import ReIDService

    output_dir, _, _ = demo_run
    index = GalleryIndex.load(output_dir / INDEX_DIR)
    assert index.embedding_settings["flip"] is False
    assert index.embedding_settings["processor_size"] and index.embedding_settings["model_config"]["embedding"]
    assert index.runtime_settings["runtime"] in ("torch", "onnxruntime", "openvino")
    service = ReIDService.load(output_dir / INDEX_DIR)  # the saved model and its processor match what was recorded
    assert service.encoder.provenance.mismatches(index.provenance).keys() <= {"runtime"}
    flipped = ReIDEncoder(service.model, service.image_processor, runtime="torch", flip=True)
    with pytest.raises(EmbeddingSettingsMismatchError, match="flip"):
        index.check_provenance(flipped.provenance)


def test_demo_calibrates_a_threshold_into_the_model_and_the_index(demo_run):
    output_dir, _, printed = demo_run
    config = json.loads((output_dir / FINE_TUNED_DIR / "config.json").read_text())
    calibration = config["verification_calibration"]
    assert config["verification_threshold"] == calibration["threshold"]
    assert (
        calibration["false_match_rate"] <= calibration["target_false_match_rate"] == QUICK.calibration_false_match_rate
    )
    assert "held-out people of population 1" in calibration["calibrated_on"]
    assert calibration["num_genuine_pairs"] > 0 and calibration["num_impostor_pairs"] > 0
    index = GalleryIndex.load(output_dir / INDEX_DIR)
    assert index.verification_calibration == calibration
    assert index.verification_threshold == calibration["threshold"]


def test_demo_ends_with_the_serve_command_of_its_index(demo_run):
    output_dir, _, printed = demo_run
    assert printed.rstrip().splitlines()[-1].strip() == f"lareid serve --index_dir {output_dir / INDEX_DIR}"


def test_demo_fine_tunes_blockwise_and_the_loss_goes_down(demo_run):
    output_dir, _, _ = demo_run
    history = json.loads((output_dir / FINE_TUNED_DIR / "trainer_state.json").read_text())["log_history"]
    losses = [entry["loss"] for entry in history if "loss" in entry]
    # 18 toy steps: the new classifiers start at the PCB init (std 0.001), so the loss moves a few percent; the
    # retrieval check below is the demo's point.
    assert len(losses) >= 6 and sum(losses[-3:]) < 0.97 * sum(losses[:3])
    stages = json.loads((output_dir / METRICS_FILE).read_text())["stages"]
    assert stages["fine-tuned"]["mAP"] > stages["pretrained"]["mAP"] > stages["untrained"]["mAP"]
    for stage in (PRETRAINED_DIR, FINE_TUNED_DIR):  # float32 on every CPU
        assert not torch.load(output_dir / stage / "training_args.bin", weights_only=False).bf16
    config = json.loads((output_dir / FINE_TUNED_DIR / "config.json").read_text())
    trainable = [entry["trainable_blocks"] for entry in history if "trainable_blocks" in entry]
    assert trainable == list(range(1, config["backbone_config"]["num_hidden_layers"] + 1))  # one more block per epoch
    assert any("eval_rank1" in entry for entry in history)  # evaluated every epoch, for the training curves


def test_demo_summary_names_every_file_written(demo_run):
    output_dir, _, printed = demo_run
    summary = printed.split("Files in", 1)[1]
    for path in output_dir.rglob("*"):
        if path.is_file() and path.suffix == ".lock":  # the index's write lock beside its folder: not a result
            assert path.name not in summary
        elif path.is_file() and path.suffix != ".jpg":
            assert str(path.relative_to(output_dir)) in summary, path
    assert "generated images" in summary


def test_demo_reruns_into_its_folder_and_reuses_the_generated_people(demo_run):
    output_dir, _, _ = demo_run
    manifests = sorted((output_dir / "data").glob("*/synthetic_reid.json"))
    generated_at = [path.stat().st_mtime_ns for path in manifests]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["demo", "--quick", "--output_dir", str(output_dir)]) == 0
    assert len(manifests) == 2 and [path.stat().st_mtime_ns for path in manifests] == generated_at


def test_demo_recognises_its_own_output(demo_run):
    output_dir, _, _ = demo_run
    check_outputs([output_dir / name for name in OUTPUTS], fix="x")  # a second run over it is accepted
