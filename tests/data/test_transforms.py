"""Transforms: evaluation equals the image processor; each augmentation does what it says."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from transformers import ViTImageProcessorPil

from hf_lareid.data import build_eval_transform, build_train_transform, load_reid_dataset
from hf_lareid.utils.images import load_rgb

OFF = {"hflip_p": 0.0, "vflip_p": 0.0, "color_jitter_p": 0.0, "erasing_p": 0.0}


@pytest.fixture
def processor():
    return ViTImageProcessorPil(
        size={"height": 32, "width": 16},
        resample=Image.Resampling.BICUBIC,
        image_mean=[0.4, 0.5, 0.6],
        image_std=[0.2, 0.25, 0.3],
    )


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (40 + 3 * i, 20 + i, 3), dtype=np.uint8)) for i in range(3)]


def test_eval_equals_processor_exactly(processor, images):
    output = build_eval_transform(processor)({"image": images, "person_id": [1, 2, 3]})
    expected = processor(images, return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(output["pixel_values"], expected, rtol=0, atol=0)
    assert output["pixel_values"].shape == (3, 3, 32, 16) and output["person_id"] == [1, 2, 3]


def test_train_without_augmentation_matches_eval(processor, images):
    train = build_train_transform(processor, **OFF)({"image": images})["pixel_values"]
    torch.testing.assert_close(train, processor(images, return_tensors="pt")["pixel_values"], rtol=0, atol=1e-6)


def test_horizontal_and_vertical_flips(processor, images):
    reference = build_eval_transform(processor)({"image": images})["pixel_values"]
    hflip = build_train_transform(processor, **{**OFF, "hflip_p": 1.0})({"image": images})["pixel_values"]
    vflip = build_train_transform(processor, **{**OFF, "vflip_p": 1.0})({"image": images})["pixel_values"]
    torch.testing.assert_close(hflip, reference.flip(-1), rtol=0, atol=1e-6)
    torch.testing.assert_close(vflip, reference.flip(-2), rtol=0, atol=1e-6)


def test_color_jitter_changes_colours_only(processor, images):
    torch.manual_seed(0)
    reference = build_eval_transform(processor)({"image": images})["pixel_values"]
    jittered = build_train_transform(processor, **{**OFF, "color_jitter_p": 1.0, "brightness": 0.5})({"image": images})[
        "pixel_values"
    ]
    assert jittered.shape == reference.shape and not torch.allclose(jittered, reference, atol=1e-3)
    # Brightness scales all channels of an image by one factor in [0.5, 1.5] (before normalisation).
    mean = torch.tensor(processor.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(processor.image_std).view(1, 3, 1, 1)
    ratio = (jittered * std + mean).sum(dim=(1, 2, 3)) / (reference * std + mean).sum(dim=(1, 2, 3))
    assert ((ratio > 0.45) & (ratio < 1.55)).all()


def test_random_erasing_blanks_a_box(processor, images):
    torch.manual_seed(0)
    reference = build_eval_transform(processor)({"image": images})["pixel_values"]
    erased = build_train_transform(processor, **{**OFF, "erasing_p": 1.0})({"image": images})["pixel_values"]
    changed = (erased != reference).any(dim=1)  # (batch, height, width)
    for index in range(len(images)):
        rows, cols = torch.nonzero(changed[index], as_tuple=True)
        assert rows.numel() > 0
        box = erased[index, :, rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert torch.all(box == 0)  # the erased box holds the mean colour (0 after normalisation)


def test_bad_probability(processor):
    with pytest.raises(ValueError, match="hflip_p"):
        build_train_transform(processor, hflip_p=1.5)
    with pytest.raises(TypeError, match="image_mean"):
        build_eval_transform(object())


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P", "I;16"])
def test_any_mode_goes_through(processor, mode):
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (30, 14, 3), dtype=np.uint8)).convert(mode)
    assert load_rgb(image).mode == "RGB"
    for transform in (build_eval_transform(processor), build_train_transform(processor)):
        assert transform({"image": [image]})["pixel_values"].shape == (1, 3, 32, 16)


def test_with_dataset_and_dataloader(market_dir, cache_dir, processor):
    train = load_reid_dataset("market1501", data_dir=market_dir, splits=["train"], cache_dir=cache_dir)["train"]
    transformed = train.with_transform(build_train_transform(processor))
    row = transformed[0]
    assert set(row) == {"pixel_values", "label", "person_id", "camera_id"}
    assert row["pixel_values"].shape == (3, 32, 16) and row["pixel_values"].dtype == torch.float32
    batch = next(iter(DataLoader(transformed, batch_size=4)))
    assert batch["pixel_values"].shape == (4, 3, 32, 16) and batch["label"].shape == (4,)


class _TorchvisionLikeProcessor:
    """Stands in for transformers 5's default `ViTImageProcessor` (torchvision backend; torchvision may be absent)."""

    backend = "torchvision"
    image_mean = [0.5, 0.5, 0.5]
    image_std = [0.5, 0.5, 0.5]
    resample = 3


@pytest.mark.parametrize("build", [build_eval_transform, build_train_transform])
def test_non_pil_backend_is_an_error(build):
    with pytest.raises(ValueError, match=r"'torchvision' backend.*backend=\"pil\".*resample=3"):
        build(_TorchvisionLikeProcessor())
    no_backend = type("Custom", (), {"image_mean": [0.5] * 3, "image_std": [0.5] * 3})()
    with pytest.raises(ValueError, match="PIL backend"):
        build(no_backend)


def test_non_bicubic_resample_warns_but_works(images, caplog):
    bilinear = ViTImageProcessorPil(size={"height": 32, "width": 16})  # transformers' default: resample=2
    assert bilinear.resample == 2
    with caplog.at_level(logging.WARNING, logger="hf_lareid.data"):
        transform = build_eval_transform(bilinear)
    assert "resample=2" in caplog.text and "bicubic (resample=3)" in caplog.text
    assert transform({"image": images})["pixel_values"].shape == (3, 3, 32, 16)


def test_bicubic_pil_processor_is_silent(processor, caplog):
    with caplog.at_level(logging.WARNING, logger="hf_lareid.data"):
        build_train_transform(processor)
        build_eval_transform(processor)
    assert caplog.text == ""


def test_shipped_setups_and_auto_pil_processor_pass_silently(caplog):
    from transformers import AutoImageProcessor

    from hf_lareid.hub.setups import list_setups, load_setup, setup_path

    with caplog.at_level(logging.WARNING, logger="hf_lareid.data"):
        for name in list_setups():
            build_train_transform(load_setup(name)[1])
            build_eval_transform(AutoImageProcessor.from_pretrained(setup_path(name), backend="pil"))
    assert caplog.text == ""


def test_erasing_box_lies_inside_the_image_with_its_area_share_and_follows_its_generator():
    from hf_lareid.data.transforms import ERASING_ASPECT_RATIOS, erasing_box

    shares, ratios = [], []
    for seed in range(200):
        top, left, height, width = erasing_box((128, 64), (0.02, 0.33), torch.Generator().manual_seed(seed))
        assert 0 <= top and top + height <= 128 and 0 <= left and left + width <= 64 and height >= 1 and width >= 1
        shares.append(height * width / (128 * 64))
        ratios.append(height / width)
        again = erasing_box((128, 64), (0.02, 0.33), torch.Generator().manual_seed(seed))
        assert again == (top, left, height, width)
    # Clamping to the image only shrinks a box: shares stay under the top of the scale (rounding aside), and the
    # draws spread over the range instead of collapsing to one size or shape.
    assert max(shares) <= 0.33 * 1.1 and min(shares) >= 0.02 * 0.5 and np.std(shares) > 0.03
    assert min(ratios) < 1.0 < max(ratios) and max(ratios) <= ERASING_ASPECT_RATIOS[1] * 1.5
