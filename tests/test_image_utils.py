"""`load_rgb`, the one image loader: every PIL mode against its 8-bit RGB equivalent, and every embedding path."""

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import pipeline

import hf_lareid
from hf_lareid.data import build_eval_transform, build_train_transform, load_reid_dataset
from hf_lareid.embedding import extract_features
from hf_lareid.utils.images import ImageReadError, load_rgb


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    """A (64, 32) grey picture with structure (a gradient plus blobs), values 0..255."""
    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[0:64, 0:32]
    grey = 40 + 3 * rows + 30 * np.sin(cols / 3.0) + rng.normal(0, 8, (64, 32))
    return np.clip(grey, 0, 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def colour_picture(picture) -> np.ndarray:
    return np.stack([picture, picture[::-1], 255 - picture], axis=-1)


def as_array(image) -> np.ndarray:
    result = load_rgb(image)
    assert result.mode == "RGB"
    return np.asarray(result, dtype=np.int16)


def test_rgb_is_returned_as_is(colour_picture):
    image = Image.fromarray(colour_picture)
    assert load_rgb(image) is image


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda grey: Image.fromarray(grey.astype(np.uint16) * 257), id="I;16"),
        pytest.param(lambda grey: Image.fromarray(grey.astype(np.uint16) * 257).convert("I"), id="I-16-bit-range"),
        pytest.param(lambda grey: Image.fromarray(grey.astype(np.float32) / 255), id="F-0..1"),
        pytest.param(lambda grey: Image.fromarray(grey.astype(np.float32)), id="F-0..255"),
        pytest.param(lambda grey: Image.fromarray(grey).convert("LA"), id="LA-opaque"),
        pytest.param(lambda grey: Image.fromarray(grey).convert("RGBA"), id="RGBA-opaque"),
        pytest.param(lambda grey: Image.fromarray(grey).convert("P"), id="P"),
        pytest.param(lambda grey: grey.astype(np.uint16) * 257, id="uint16-array"),
        pytest.param(lambda grey: grey.astype(np.float64) / 255, id="float-array"),
    ],
)
def test_grey_modes_equal_their_8_bit_copy(picture, make):
    """16-bit, 32-bit and float grey images are scaled to 0..255 (PIL's convert clips them to white)."""
    expected = np.repeat(picture[..., None], 3, axis=-1).astype(np.int16)
    np.testing.assert_array_equal(as_array(make(picture)), expected)


def test_16_bit_png_file_is_scaled_not_clipped(tmp_path, picture):
    path = tmp_path / "deep.png"
    Image.fromarray(picture.astype(np.uint16) * 257).save(path)
    assert Image.open(path).mode == "I;16"
    assert np.asarray(Image.open(path).convert("RGB")).mean() > 250  # what PIL alone gives: white
    np.testing.assert_array_equal(as_array(path)[..., 0], picture)
    np.testing.assert_array_equal(as_array(str(path))[..., 0], picture)


def test_32_bit_int_and_float_outside_the_usual_ranges_are_stretched():
    values = np.array([[-1000, 0], [1000, 3000]], dtype=np.int32)
    np.testing.assert_array_equal(as_array(Image.fromarray(values))[..., 0], [[0, 64], [128, 255]])
    floats = np.array([[-2.0, 0.0], [2.0, 6.0]], dtype=np.float32)
    np.testing.assert_array_equal(as_array(Image.fromarray(floats))[..., 0], [[0, 64], [128, 255]])


def test_colour_modes_equal_their_rgb(colour_picture):
    rgb = Image.fromarray(colour_picture)
    expected = colour_picture.astype(np.int16)
    np.testing.assert_array_equal(as_array(rgb.convert("RGBA")), expected)
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    np.testing.assert_array_equal(as_array(palette), np.asarray(palette.convert("RGB"), dtype=np.int16))
    cmyk = rgb.convert("CMYK")
    np.testing.assert_array_equal(as_array(cmyk), np.asarray(cmyk.convert("RGB"), dtype=np.int16))
    np.testing.assert_array_equal(as_array(colour_picture), expected)  # a uint8 array


def test_transparency_is_composited_over_white(colour_picture):
    rgba = np.concatenate([colour_picture, np.full((64, 32, 1), 255, np.uint8)], axis=-1)
    rgba[:10, :, 3] = 0  # transparent top rows
    rgba[10:20, :, 3] = 128  # half transparent
    result = as_array(Image.fromarray(rgba, mode="RGBA"))
    assert (result[:10] == 255).all()
    np.testing.assert_array_equal(result[20:], colour_picture[20:])
    half = (colour_picture[10:20].astype(np.float64) * 128 + 255 * 127) / 255
    assert np.abs(result[10:20] - half).max() <= 1
    la = Image.fromarray(rgba[..., 0]).convert("L")
    la.putalpha(Image.fromarray(rgba[..., 3]))
    assert (as_array(la)[:10] == 255).all()
    palette = Image.fromarray(colour_picture).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    hidden = palette.getpixel((0, 0))
    palette.info["transparency"] = hidden  # one palette entry is transparent
    mask = np.asarray(palette) == hidden
    assert (as_array(palette)[mask] == 255).all()
    pa = palette.convert("PA")
    assert (as_array(pa)[mask] == 255).all()
    black = as_array(Image.new("RGBA", (4, 4), (9, 9, 9, 0)).convert("RGBA"))
    assert (black == 255).all()


def test_bilevel_and_exif_orientation(tmp_path, colour_picture):
    bilevel = Image.fromarray(np.array([[0, 255], [255, 0]], dtype=np.uint8)).convert("1")
    np.testing.assert_array_equal(as_array(bilevel)[..., 0], [[0, 255], [255, 0]])
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[Image.ExifTags.Base.Orientation] = 6  # stored sideways: turn 90 degrees clockwise to view
    Image.fromarray(colour_picture).save(path, exif=exif, quality=95)
    upright = load_rgb(path)
    assert upright.size == (64, 32)  # (width, height): turned upright
    assert load_rgb(Image.open(path)).size == (64, 32)


def test_bad_files_and_types_are_named(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.png.*corrupt or truncated"):
        load_rgb(empty)
    with pytest.raises(ImageReadError, match=r"missing\.png does not exist"):
        load_rgb(tmp_path / "missing.png")
    with pytest.raises(TypeError, match="got list"):
        load_rgb([1, 2, 3])
    with pytest.raises(ImageReadError, match=r"got shape \(2, 2, 5\)"):
        load_rgb(np.zeros((2, 2, 5), np.uint8))


def test_load_rgb_is_public():
    assert hf_lareid.load_rgb is load_rgb


# ------------------------------------------------------------------ every embedding path agrees with the 8-bit copy
@pytest.fixture
def deep_and_flat(tmp_path, picture):
    """The same picture saved as a 16-bit PNG and as an 8-bit PNG, plus a white image of the same size."""
    deep, flat, white = tmp_path / "deep.png", tmp_path / "flat.png", tmp_path / "white.png"
    Image.fromarray(picture.astype(np.uint16) * 257).save(deep)
    Image.fromarray(picture).save(flat)
    Image.new("L", (32, 64), 255).save(white)
    return deep, flat, white


def cosine(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def assert_matches_8_bit_copy(deep, flat, white):
    assert cosine(deep, flat) > 0.99
    assert cosine(deep, white) < cosine(deep, flat) - 1e-3, "the 16-bit image embeds like a white image"


def test_pipeline_and_extract_features_scale_16_bit(deep_and_flat, tiny_model, tiny_model_dir, tiny_image_processor):
    deep, flat, white = deep_and_flat
    embedder = pipeline("lareid-embedding", model=str(tiny_model_dir))
    assert_matches_8_bit_copy(*embedder([str(deep), str(flat), str(white)], return_tensors="np"))
    images = [Image.open(path) for path in deep_and_flat]
    assert_matches_8_bit_copy(*embedder(images, return_tensors="np"))
    features = extract_features(tiny_model, [deep, flat, white], image_processor=tiny_image_processor, progress=False)
    assert_matches_8_bit_copy(*features.embeddings)


def test_datasets_and_transforms_scale_16_bit(tmp_path, picture, tiny_model, tiny_image_processor, monkeypatch):
    """A 16-bit PNG in a data folder decodes (datasets, transforms, extract_features) as its 8-bit copy."""
    root = tmp_path / "people"
    for person in ("1", "2"):
        (root / person).mkdir(parents=True)
    Image.fromarray(picture.astype(np.uint16) * 257).save(root / "1" / "c1_deep.png")
    Image.fromarray(picture).save(root / "1" / "c2_flat.png")
    Image.new("L", (32, 64), 255).save(root / "2" / "c1_white.png")
    Image.new("L", (32, 64), 0).save(root / "2" / "c2_black.png")
    data = load_reid_dataset(
        "identity_folders", data_dir=root, train_ids=[1, 2], test_ids=[], cache_dir=tmp_path / "cache"
    )
    train = data["train"].sort("path")
    names = [path.rsplit("/", 1)[-1] for path in train["path"]]
    assert names == ["c1_deep.png", "c2_flat.png", "c1_white.png", "c2_black.png"]
    assert Image.open(root / train[0]["path"]).mode == "I;16"  # `path` is relative to data_dir
    np.testing.assert_array_equal(np.asarray(train[0]["image"]), np.asarray(train[1]["image"]))
    features = extract_features(tiny_model, train, image_processor=tiny_image_processor, progress=False)
    deep, flat, white, _ = features.embeddings
    assert_matches_8_bit_copy(deep, flat, white)
    images = [train[index]["image"] for index in range(3)]
    pixels = build_eval_transform(tiny_image_processor)({"image": images})["pixel_values"]
    torch.testing.assert_close(pixels[0], pixels[1])
    no_augmentation = build_train_transform(tiny_image_processor, hflip_p=0, vflip_p=0, color_jitter_p=0)
    torch.testing.assert_close(no_augmentation({"image": images})["pixel_values"][0], pixels[1])


def test_a_truncated_file_opened_lazily_is_named(tmp_path, colour_picture):
    path = tmp_path / "cut.png"
    Image.fromarray(colour_picture).save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ImageReadError, match=r"cut\.png cannot be decoded"):
        load_rgb(path)
    with pytest.raises(ImageReadError, match=r"cut\.png cannot be decoded"):
        load_rgb(Image.open(path))  # PIL opens lazily: the error comes while converting
