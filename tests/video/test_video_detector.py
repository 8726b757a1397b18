"""`lareid video index --detector`: people from an object-detection pipeline (tiny random YOLOS detectors built here)."""

import numpy as np
import pytest
import torch
from cli_helpers import assert_one_line_error, run_cli
from PIL import Image
from transformers import YolosConfig, YolosForObjectDetection
from transformers.models.yolos.image_processing_pil_yolos import YolosImageProcessorPil

from hf_lareid.retrieval import GalleryIndex
from hf_lareid.video import PersonDetector, VideoInputError


def tiny_yolos(directory, labels):
    """A random YOLOS (width 32, 2 blocks, 4 detection tokens) with classes `labels`, saved with its processor."""
    torch.manual_seed(0)
    config = YolosConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        image_size=[64, 128],
        patch_size=16,
        num_detection_tokens=4,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    YolosForObjectDetection(config).eval().save_pretrained(directory)
    YolosImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 128}).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def detector_dir(tmp_path_factory):
    return tiny_yolos(tmp_path_factory.mktemp("detector") / "tiny-yolos", ["person"])


def test_detector_boxes_are_linked_indexed_and_a_detector_finding_nobody_is_one_line(
    detector_dir, trained_model_dir, video_set, tmp_path, capsys
):
    index_dir = tmp_path / "index"
    base = ["video", "index", trained_model_dir, "--videos", video_set / "cam1.mp4", "--index_dir", index_dir]
    status, out, err = run_cli(
        *base, "--detector", detector_dir, "--detector_threshold", "0", "--min_frames", "1", capsys=capsys
    )
    assert status == 0, err
    index = GalleryIndex.load(index_dir)
    assert len(index) >= 1 and set(index.camera_ids.tolist()) == {1}
    status, _, err = run_cli(
        "video",
        "index",
        trained_model_dir,
        "--videos",
        video_set / "cam2.mp4",
        "--index_dir",
        index_dir,
        "--detector",
        detector_dir,
        "--detector_threshold",
        "1.01",
        capsys=capsys,
    )
    assert_one_line_error(status, err, "cam2.mp4", "found no person")
    assert sorted(GalleryIndex.load(index_dir).paths) == sorted(index.paths)


def test_only_the_person_class_is_kept(tmp_path, video_set):
    detector = PersonDetector(tiny_yolos(tmp_path / "mixed", ["person", "car"]), threshold=0.0)
    frame = Image.open(video_set / "cam1" / "img1" / "000010.jpg")
    found = detector.pipeline(frame, threshold=0.0)
    people = sum(item["label"] == "person" for item in found)
    assert len(found) == 4 and people < 4  # this random detector calls some boxes cars
    boxes, scores = detector.detect(np.asarray(frame))
    assert boxes.shape == (people, 4) and scores.shape == (people,)


def test_a_detector_without_a_person_class_is_refused(tmp_path):
    with pytest.raises(VideoInputError, match="no 'person' class"):
        PersonDetector(tiny_yolos(tmp_path / "cars", ["car"]))
