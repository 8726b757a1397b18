"""Re-ID datasets as Hugging Face `datasets`: Market-1501, DukeMTMC-reID, CUHK03-np, MSMT17, the course set,
folder-per-person sets, a generated set.

One entry point, :func:`load_reid_dataset`, returns a `datasets.DatasetDict` whose splits all have the same columns:
``image`` (`datasets.Image`, decoded lazily to RGB as `hf_lareid.load_rgb` reads it), ``person_id``, ``camera_id`` (-1 when unknown), ``path``
(relative to the data folder) and ``label`` (`ClassLabel`, contiguous 0..K-1 over the training identities; -1 in the
evaluation splits). :func:`merge_training_sets` joins several training splits with disjoint label ranges. Builds are
cached as Arrow files under :func:`default_cache_dir`.

This package is a leaf: it imports no model, training, evaluation or CLI code.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

import datasets
import numpy as np

from ..utils.errors import InvalidInputError
from .builder import build_dataset_dict, clear_reid_cache, default_cache_dir, folder_digest
from .course import collect_course
from .cuhk03_np import CUHK03_NP_SCHEME, collect_cuhk03_np
from .dukemtmc import DUKEMTMC_SCHEME, collect_dukemtmc
from .file_names import FileNameScheme
from .folders import data_root
from .identity_folders import collect_identity_folders
from .market1501 import MARKET1501_SCHEME, collect_market1501, parse_market1501_name
from .msmt17 import MSMT17_SCHEME, collect_msmt17
from .records import QUERY_GALLERY_PAIRS, ReIDCollection, ReIDDataError, ReIDRecord
from .sampler import PKSampler
from .synthetic import generate_synthetic_reid
from .synthetic_video import generate_synthetic_video
from .transforms import ReIDTransform, build_eval_transform, build_train_transform, check_image_processor

logger = logging.getLogger(__name__)

__all__ = [
    "FileNameScheme",
    "PKSampler",
    "REID_DATASETS",
    "ReIDCollection",
    "ReIDDataError",
    "ReIDRecord",
    "ReIDTransform",
    "build_eval_transform",
    "build_train_transform",
    "check_image_processor",
    "clear_reid_cache",
    "data_root",
    "default_cache_dir",
    "file_name_scheme",
    "generate_synthetic_reid",
    "generate_synthetic_video",
    "load_reid_dataset",
    "merge_training_sets",
    "parse_market1501_name",
]


def _collect_synthetic(data_dir: str | os.PathLike, splits: Sequence[str] | None = None, **options) -> ReIDCollection:
    root = generate_synthetic_reid(data_dir, **options)
    return collect_market1501(root, splits)


REID_DATASETS: dict[str, Callable[..., ReIDCollection]] = {
    "market1501": collect_market1501,
    "dukemtmcreid": collect_dukemtmc,
    "cuhk03_np": collect_cuhk03_np,
    "msmt17": collect_msmt17,
    "course": collect_course,
    "identity_folders": collect_identity_folders,
    "synthetic": _collect_synthetic,
}
"""Loader names accepted by :func:`load_reid_dataset` and the function that parses each folder."""

_FILE_NAME_SCHEMES: dict[str, FileNameScheme | None] = {
    "market1501": MARKET1501_SCHEME,
    "dukemtmcreid": DUKEMTMC_SCHEME,
    "cuhk03_np": CUHK03_NP_SCHEME,
    "msmt17": MSMT17_SCHEME,
    "course": None,  # the person is the folder, not the file name
    "identity_folders": None,
    "synthetic": MARKET1501_SCHEME,  # generated in the Market-1501 layout
}


def _check_dataset_name(name: str) -> None:
    if name not in REID_DATASETS:
        raise InvalidInputError(f"Unknown re-ID dataset {name!r}; choose one of {sorted(REID_DATASETS)}.")


def file_name_scheme(name: str) -> FileNameScheme | None:
    """How the images of loader `name` (one of :data:`REID_DATASETS`) are named, or `None` when their file names
    carry no person id (``"course"``, ``"identity_folders"``: the person is the folder).

    Example:
        >>> file_name_scheme("dukemtmcreid").parse("query/0005_c2_f0046985.jpg")  # (person id, camera id)
        (5, 2)
        >>> file_name_scheme("identity_folders") is None
        True
    """
    _check_dataset_name(name)
    return _FILE_NAME_SCHEMES[name]


def _plain(value):
    """`value` as JSON-friendly Python (ranges, tuples and numpy arrays become lists), so the cache key is exact."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    try:
        return [_plain(item) for item in value]
    except TypeError:
        return repr(value)


def _keep_ids(collection: ReIDCollection, person_ids: Sequence[int]) -> None:
    """Keep only `person_ids` (plus junk and distractors in galleries, which the protocol needs)."""
    keep = {int(person_id) for person_id in person_ids}
    for split, records in collection.splits.items():
        is_gallery = split in QUERY_GALLERY_PAIRS.values()
        collection.splits[split] = [
            record for record in records if record.person_id in keep or (is_gallery and record.person_id <= 0)
        ]


def _check_splits(collection: ReIDCollection) -> None:
    """Raise for an empty split; warn about queries that no gallery image can match."""
    for split, records in collection.splits.items():
        if not records:
            folder = collection.folders.get(split, collection.root)
            raise ReIDDataError(
                f"Split {split!r} of {folder} holds no images (after the person_ids filter, if any). Add images, "
                "widen person_ids, or leave the split out with splits=[...]."
            )
    for query_split, gallery_split in QUERY_GALLERY_PAIRS.items():
        if query_split not in collection.splits or gallery_split not in collection.splits:
            continue
        cameras_of: dict[int, set[int]] = {}
        for record in collection.splits[gallery_split]:
            cameras_of.setdefault(record.person_id, set()).add(record.camera_id)
        unmatched = [
            record.path
            for record in collection.splits[query_split]
            if not (cameras_of.get(record.person_id, set()) - ({record.camera_id} - {-1}))
        ]
        if unmatched:
            logger.warning(
                "%d %s image(s) have no %s image of the same person from another camera, so evaluation skips them "
                "(first: %s). Add gallery images of these persons, or remove the query images.",
                len(unmatched),
                query_split,
                gallery_split,
                unmatched[0],
            )


def load_reid_dataset(
    name: str,
    data_dir: str | os.PathLike,
    *,
    splits: Sequence[str] | None = None,
    person_ids: Sequence[int] | None = None,
    cache_dir: str | os.PathLike | None = None,
    **options,
) -> datasets.DatasetDict:
    """Load a re-ID folder as a `datasets.DatasetDict`, building the Arrow cache on first use.

    Args:
        name (`str`): one of :data:`REID_DATASETS`: ``"market1501"``, ``"dukemtmcreid"``, ``"cuhk03_np"``,
            ``"msmt17"``, ``"course"``, ``"identity_folders"``, ``"synthetic"`` (generates the set into `data_dir`
            first, then loads it as Market-1501).
        data_dir (`str` or `os.PathLike`): the folder as distributed (or to generate into).
        splits (`Sequence[str]`, *optional*): splits to load; default all of the loader's non-empty splits.
        person_ids (`Sequence[int]`, *optional*): keep only these persons (galleries also keep junk/distractors).
        cache_dir (`str` or `os.PathLike`, *optional*): where Arrow builds go; default :func:`default_cache_dir`
            (``~/.cache/huggingface/datasets/hf_lareid``). Delete it, or call :func:`clear_reid_cache`, to free space.
        **options: loader options, e.g. ``variant`` (cuhk03_np: ``"labeled"`` or ``"detected"``), ``separate_val``
            (msmt17), ``num_train_ids``, ``seed``, ``query_rule`` (course / identity_folders), ``num_ids``,
            ``num_cameras``, ``images_per_camera``, ``image_size``, ``first_id`` (synthetic).

    Returns:
        `datasets.DatasetDict`: splits with the same columns ``image``, ``person_id``, ``camera_id``, ``path``
        (relative to `data_dir`, ``/``-separated) and ``label``. Labels run 0..K-1 over the sorted training person ids
        and are -1 outside ``train`` (and MSMT17's separate ``val``). Open a row's file with
        ``os.path.join(data_root(data_dir), row["path"])``; the ``image`` column decodes it for you.

    The cache key covers the absolute folder path and each image's name, size and modification time, so adding,
    removing or replacing an image, or moving the folder, builds afresh; every image is decoded once during the
    build (a corrupt file raises `ReIDDataError` naming it) and not again on cached loads.

    Example:
        >>> from hf_lareid.data import load_reid_dataset
        >>> data = load_reid_dataset("synthetic", data_dir="synthetic_reid", num_ids=20)  # doctest: +SKIP
        >>> data["train"][0]["image"].size, data["train"].features["label"].num_classes  # doctest: +SKIP
        ((64, 128), 10)
    """
    _check_dataset_name(name)
    if data_dir is None:
        raise InvalidInputError(f"load_reid_dataset({name!r}) needs data_dir= pointing at the dataset folder.")
    try:
        collection = REID_DATASETS[name](data_dir, splits=splits, **options)
    except TypeError as error:
        if "unexpected keyword argument" not in str(error):
            raise
        raise TypeError(f"Unknown option for load_reid_dataset({name!r}): {error}") from None
    if person_ids is not None:
        _keep_ids(collection, person_ids)
    _check_splits(collection)
    files = {record.path for records in collection.splits.values() for record in records}
    files.update(str(path) for path in collection.sources)
    digest_options = {"name": name, "splits": list(collection.splits), "person_ids": person_ids, **options}
    digest_options = {key: _plain(value) for key, value in digest_options.items() if key != "overwrite"}
    fingerprint = folder_digest(collection.root, files, digest_options)
    return build_dataset_dict(name, fingerprint, collection, cache_dir)


def merge_training_sets(
    training_sets: Sequence[datasets.Dataset], names: Sequence[str] | None = None
) -> datasets.Dataset:
    """Concatenate training splits into one whose labels are disjoint: set i's labels shift by the classes before it.

    Args:
        training_sets (`Sequence[datasets.Dataset]`): ``train`` splits of :func:`load_reid_dataset` (with a
            ``label`` `ClassLabel` column).
        names (`Sequence[str]`, *optional*): a prefix per set for the merged `ClassLabel` names
            (default ``set0``, ``set1``, ...); merged names read ``"<prefix>/<original name>"``.

    Returns:
        `datasets.Dataset` with the same columns; ``label`` runs 0..sum(K_i)-1. ``person_id`` keeps each set's own
        ids (they may repeat across sets); use ``label`` as the class. ``path`` stays relative to each set's own
        folder.

    Example:
        >>> sets = [market["train"], course["train"]]  # doctest: +SKIP
        >>> merged = merge_training_sets(sets, names=["market", "course"])  # doctest: +SKIP
        >>> merged.features["label"].num_classes  # 751 + 62  # doctest: +SKIP
        813
    """
    if not training_sets:
        raise InvalidInputError("merge_training_sets needs at least one dataset.")
    names = list(names) if names is not None else [f"set{i}" for i in range(len(training_sets))]
    if len(names) != len(training_sets):
        raise InvalidInputError(f"Got {len(names)} names for {len(training_sets)} training sets.")
    merged_names: list[str] = []
    shifted = []
    for prefix, dataset in zip(names, training_sets):
        feature = dataset.features.get("label")
        if not isinstance(feature, datasets.ClassLabel):
            raise InvalidInputError(
                f"Training set {prefix!r} has no ClassLabel column 'label'; pass the 'train' split of "
                "load_reid_dataset."
            )
        labels = np.asarray(dataset["label"], dtype=np.int64)
        if (labels < 0).any():
            raise InvalidInputError(
                f"Training set {prefix!r} has {int((labels < 0).sum())} rows with label -1 (an evaluation split); "
                "pass the 'train' split of load_reid_dataset."
            )
        offset = len(merged_names)
        merged_names += [f"{prefix}/{label_name}" for label_name in feature.names]
        labels = labels + offset
        shifted.append(dataset.remove_columns("label").add_column("label", labels.tolist()))
    label_feature = datasets.ClassLabel(names=merged_names)
    return datasets.concatenate_datasets([dataset.cast_column("label", label_feature) for dataset in shifted])
