"""Generated re-ID set: determinism, populations, Market-1501 protocol, folder safety."""

import hashlib

import numpy as np
import pytest
from PIL import Image

import hf_lareid.data.synthetic as synthetic_module
from hf_lareid.data import generate_synthetic_reid, load_reid_dataset, parse_market1501_name
from hf_lareid.data.synthetic import SYNTHETIC_MANIFEST

SMALL = {"num_ids": 6, "num_cameras": 3, "images_per_camera": 2}


def _digests(root):
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*.jpg"))
    }


def test_deterministic_per_seed(tmp_path):
    first = _digests(generate_synthetic_reid(tmp_path / "a", seed=3, **SMALL))
    second = _digests(generate_synthetic_reid(tmp_path / "b", seed=3, **SMALL))
    other = _digests(generate_synthetic_reid(tmp_path / "c", seed=4, **SMALL))
    assert first == second and len(first) == 36
    assert first.keys() == other.keys() and first != other


def test_market_protocol_splits(tmp_path):
    root = generate_synthetic_reid(tmp_path / "s", num_ids=8, num_cameras=3, images_per_camera=3, num_distractors=2)
    parsed = {
        folder: [parse_market1501_name(path) for path in (root / folder).glob("*.jpg")]
        for folder in ("bounding_box_train", "query", "bounding_box_test")
    }
    train_ids = {pid for pid, _ in parsed["bounding_box_train"]}
    query_ids = {pid for pid, _ in parsed["query"]}
    assert train_ids == {1, 2, 3, 4} and query_ids == {5, 6, 7, 8}
    assert len(parsed["query"]) == 4 * 3  # one query per identity and camera
    gallery = parsed["bounding_box_test"]
    assert sum(pid == 0 for pid, _ in gallery) == 2
    for pid, camera in parsed["query"]:
        assert any(g_pid == pid and g_camera != camera for g_pid, g_camera in gallery)


def test_image_size_is_height_width(tmp_path):
    root = generate_synthetic_reid(tmp_path / "s", image_size=(96, 40), **SMALL)
    image = Image.open(next((root / "query").glob("*.jpg")))
    assert image.size == (40, 96) and image.mode == "RGB"


def test_populations_are_disjoint_and_differ(tmp_path):
    first = generate_synthetic_reid(tmp_path / "p1", first_id=1, **SMALL)
    second = generate_synthetic_reid(tmp_path / "p2", first_id=101, **SMALL)
    ids = [{parse_market1501_name(p)[0] for p in root.rglob("*.jpg")} for root in (first, second)]
    assert ids == [set(range(1, 7)), set(range(101, 107))]
    a = np.asarray(Image.open(first / "bounding_box_train" / "0001_c1s1_000000_01.jpg"), dtype=float)
    b = np.asarray(Image.open(second / "bounding_box_train" / "0101_c1s1_000000_01.jpg"), dtype=float)
    assert np.abs(a - b).mean() > 1.0


def test_identities_differ_more_across_than_within_camera(tmp_path):
    """A drawn person keeps its look within a camera; a different person's figure differs (not just noise)."""
    root = generate_synthetic_reid(tmp_path / "s", num_ids=12, num_cameras=2, images_per_camera=3, num_train_ids=11)

    def pixels(pid, shot):
        name = f"{pid:04d}_c1s1_{shot * 25:06d}_{shot + 1:02d}.jpg"
        return np.asarray(Image.open(root / "bounding_box_train" / name), dtype=float)

    same = np.mean([np.abs(pixels(pid, 0) - pixels(pid, 1)).mean() for pid in range(1, 12)])
    different = np.mean([np.abs(pixels(pid, 0) - pixels(pid + 1, 0)).mean() for pid in range(1, 11)])
    assert different > same


def test_reuse_regenerate_and_refuse_foreign_folder(tmp_path, image_writer):
    root = generate_synthetic_reid(tmp_path / "s", **SMALL)
    manifest = (root / SYNTHETIC_MANIFEST).stat().st_mtime_ns
    generate_synthetic_reid(root, **SMALL)
    assert (root / SYNTHETIC_MANIFEST).stat().st_mtime_ns == manifest  # same options: reused
    generate_synthetic_reid(root, **{**SMALL, "num_ids": 4})
    assert len(list(root.rglob("*.jpg"))) == 24  # new options: regenerated in place
    assert not list(root.glob(".synthetic-*"))
    image_writer(tmp_path / "mine" / "holiday.jpg")
    with pytest.raises(FileExistsError, match="not empty"):
        generate_synthetic_reid(tmp_path / "mine", **SMALL)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"num_cameras": 1}, "num_cameras"),
        ({"images_per_camera": 1}, "images_per_camera"),
        ({"image_size": (8, 8)}, "image_size"),
        ({"num_train_ids": 6}, "num_train_ids"),
    ],
)
def test_bad_options(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        generate_synthetic_reid(tmp_path / "s", **{**SMALL, **options})


def test_load_synthetic(tmp_path):
    data = load_reid_dataset("synthetic", data_dir=tmp_path / "s", cache_dir=tmp_path / "cache", **SMALL)
    assert [data[split].num_rows for split in data] == [18, 9, 9]
    assert data["train"].features["label"].num_classes == 3
    assert data["gallery"][0]["image"].size == (64, 128)


def test_identities_share_clothing_colours(tmp_path, monkeypatch):
    """Colours come from a shared palette: tops and trousers repeat across identities, so colour alone is no id."""
    drawn = []
    original = synthetic_module._make_identity
    monkeypatch.setattr(synthetic_module, "_make_identity", lambda rng: drawn.append(original(rng)) or drawn[-1])
    generate_synthetic_reid(tmp_path / "s", num_ids=24, num_cameras=2, images_per_camera=2, image_size=(32, 16))
    assert len(drawn) == 24  # one identity drawn per person

    for part in ("top", "bottom"):
        colours = [tuple(int(v) for v in getattr(identity, part)) for identity in drawn]
        counts = {colour: colours.count(colour) for colour in colours}
        shared = sum(count for count in counts.values() if count > 1)
        assert max(counts.values()) >= 2, f"no {part} colour is shared"
        assert shared >= len(drawn) // 2, f"only {shared} of {len(drawn)} identities share their {part} colour"
    # ...while the identities themselves still differ.
    looks = {(tuple(i.top), tuple(i.bottom), i.top_pattern, i.bottom_pattern, i.item) for i in drawn}
    assert len(looks) > len(drawn) // 2


def test_a_damaged_synthetic_video_manifest_is_named(tmp_path):
    from hf_lareid.data.synthetic_video import SYNTHETIC_VIDEO_MANIFEST, generate_synthetic_video
    from hf_lareid.utils.errors import DamagedFileError

    out_dir = tmp_path / "videos"
    out_dir.mkdir()
    (out_dir / SYNTHETIC_VIDEO_MANIFEST).write_text("{ truncated")
    with pytest.raises(DamagedFileError, match=r"is damaged .*: delete .*videos and run again"):
        generate_synthetic_video(out_dir, videos=False)
    (out_dir / SYNTHETIC_VIDEO_MANIFEST).write_text("[]")
    with pytest.raises(DamagedFileError, match=r"is damaged: delete"):
        generate_synthetic_video(out_dir, videos=False)
    assert sorted(path.name for path in out_dir.iterdir()) == [SYNTHETIC_VIDEO_MANIFEST]  # nothing written
