"""The one `datasets` builder that writes re-ID records into the Arrow cache.

Loaders parse folders into :class:`~hf_lareid.data.records.ReIDCollection` objects; :class:`ReIDBuilder` writes them
(checking every image once) and :func:`build_dataset_dict` returns the cached `DatasetDict`. Every split has the same
features (``label`` is -1 outside the training identities) and ``path`` is relative to the data folder, so a
`DatasetDict` pushes to the Hub as it is and shares no local paths. The cache key is the
folder digest of :func:`folder_digest`, so a changed or moved folder is rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
from datasets.exceptions import DatasetGenerationError
from PIL import Image

from ..utils.errors import InvalidInputError
from ..utils.images import ImageReadError, load_rgb, needs_load_rgb, read_image
from .folders import relative_path
from .records import ReIDCollection, ReIDDataError, ReIDRecord

logger = logging.getLogger(__name__)

__all__ = [
    "ReIDBuilder",
    "ReIDBuilderConfig",
    "build_dataset_dict",
    "check_image",
    "clear_reid_cache",
    "default_cache_dir",
    "folder_digest",
]

_DESCRIPTION = "Person re-identification images with person and camera ids, split for training and retrieval."
_HOMEPAGE = "https://github.com/SiddhantKapil/LA-Transformer"
_LICENSE = "The license of the source folder applies; this builder only indexes it."
_CITATION = """@article{zheng2015scalable,
  title={Scalable Person Re-identification: A Benchmark},
  author={Zheng, Liang and Shen, Liyue and Tian, Lu and Wang, Shengjin and Wang, Jingdong and Tian, Qi},
  journal={ICCV}, year={2015}
}"""

TRAIN_SPLIT = "train"

# Bumped whenever the rows a loader writes change meaning, so that old caches are not reused.
# 3: `path` relative to the data folder, `label` on every split.
_CACHE_FORMAT = 3


def default_cache_dir() -> Path:
    """Where re-ID builds are cached: ``$HF_DATASETS_CACHE/hf_lareid`` (``~/.cache/huggingface/datasets/hf_lareid``)."""
    return Path(datasets.config.HF_DATASETS_CACHE) / "hf_lareid"


def _written_by_this_package(entry: Path) -> bool:
    """Whether a top-level entry of a cache folder is one this package's builds wrote.

    The layout `datasets` gives a build: `<source>/<source>-<hash>/...` folders and `_..._lock` files; generated
    sets of `lareid train` are `synthetic-<digest>/` folders with their manifest.
    """
    from .synthetic import SYNTHETIC_MANIFEST

    if entry.is_file():
        return entry.name.startswith("_") and entry.name.endswith(".lock")
    if not entry.is_dir() or entry.is_symlink():
        return False
    if re.fullmatch(r"synthetic-[0-9a-f]+", entry.name):
        return (entry / SYNTHETIC_MANIFEST).is_file()
    children = list(entry.iterdir())
    return bool(children) and all(re.fullmatch(rf"{re.escape(entry.name)}-[0-9a-f]+", c.name) for c in children)


def clear_reid_cache(cache_dir: str | os.PathLike | None = None) -> list[Path]:
    """
    Deletes the cached re-ID builds under `cache_dir` (default :func:`default_cache_dir`); returns what was removed.

    Only what this package's builds wrote is removed (see the layout in `_written_by_this_package`); other files
    stay, with a warning naming them. A folder that holds nothing of this package is refused (`ValueError`, nothing
    removed). Source image folders are never touched.
    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if not folder.exists():
        return []
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file, not a re-ID dataset cache: nothing was removed.")
    entries = sorted(folder.iterdir())
    ours = [entry for entry in entries if _written_by_this_package(entry)]
    if entries and not ours:
        raise InvalidInputError(
            f"{folder} is not a re-ID dataset cache written by hf_lareid (no <dataset>/<dataset>-<hash> build "
            "folders): nothing was removed. Pass the cache_dir given to load_reid_dataset."
        )
    for entry in ours:
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    others = [entry.name for entry in entries if entry not in ours]
    if others:
        logger.warning("Kept %s in %s: hf_lareid did not write them.", ", ".join(others), folder)
    else:
        folder.rmdir()
    logger.info("Removed the re-ID dataset cache %s (%d entries)", folder, len(ours))
    return ours


def folder_digest(root: str | os.PathLike, files: Iterable[str], options: Mapping[str, object]) -> str:
    """A hex digest of a folder's identity, used as the cache key of its Arrow build.

    It covers the absolute folder path (a moved folder is rebuilt, since `datasets.Image` stores absolute paths),
    every image's path relative to `root`, size and modification time (an added, removed or replaced image is
    rebuilt), and the loader options. Only `stat` is called per file (about 10 µs); the images are not read.
    """
    root = os.path.abspath(root)
    digest = hashlib.sha256()
    digest.update(f"{_CACHE_FORMAT}\0{root}\0".encode())
    digest.update(json.dumps(options, sort_keys=True, default=str).encode())
    for path in sorted(files):
        stat = os.stat(path)
        digest.update(f"\0{os.path.relpath(path, root)}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def check_image(path: str | os.PathLike) -> Image.Image:
    """Decode the image at `path` fully once and return it, raising `ReIDDataError` if it is corrupt, truncated or a
    decompression bomb.

    Loaders call this while building the Arrow cache, so a cached load does not repeat it.
    """
    try:
        return read_image(path)
    except ImageReadError as error:
        raise ReIDDataError(str(error)) from error


@dataclass
class ReIDBuilderConfig(datasets.BuilderConfig):
    """Config of one build.

    Args:
        source (`str`): loader name (``"market1501"``, ``"course"``, ...).
        fingerprint (`str`): folder digest plus options; a new value gives a new cache folder.
    """

    source: str = ""
    fingerprint: str = ""

    def __post_init__(self):
        super().__post_init__()
        if not self.source or not self.fingerprint:
            raise InvalidInputError("ReIDBuilderConfig needs a non-empty `source` and `fingerprint`.")


class ReIDBuilder(datasets.GeneratorBasedBuilder):
    """Writes the records of each split, checking each image once; every split gets the same columns.

    Args:
        collection (`ReIDCollection`): the records per split, their root folder and which splits carry labels.
        label_names (`Sequence[str]`): `ClassLabel` names, one per training identity, in label order.
        label_of (`Mapping[int, int]`): label index per training person id.
        **kwargs: passed to `datasets.GeneratorBasedBuilder` (`cache_dir`, `config_name`, `source`, `fingerprint`).
    """

    BUILDER_CONFIG_CLASS = ReIDBuilderConfig
    VERSION = datasets.Version("1.0.0")

    def __init__(
        self,
        *,
        collection: ReIDCollection,
        label_names: Sequence[str],
        label_of: Mapping[int, int],
        **kwargs,
    ):
        self._collection = collection
        self._label_names = list(label_names)
        self._label_of = label_of
        super().__init__(**kwargs)

    def _info(self) -> datasets.DatasetInfo:
        features = datasets.Features(
            {
                "image": datasets.Image(mode="RGB"),
                "person_id": datasets.Value("int32"),
                "camera_id": datasets.Value("int32"),
                "path": datasets.Value("string"),
                # On every split, so that all splits share one schema (`DatasetDict.push_to_hub` needs it);
                # -1 outside the labelled splits.
                "label": datasets.ClassLabel(names=self._label_names),
            }
        )
        return datasets.DatasetInfo(
            description=_DESCRIPTION, features=features, homepage=_HOMEPAGE, license=_LICENSE, citation=_CITATION
        )

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"split": split, "records": records})
            for split, records in self._collection.splits.items()
        ]

    def _generate_examples(self, split: str, records: Sequence[ReIDRecord]):
        labeled = split in self._collection.labeled_splits
        root = self._collection.root
        for index, record in enumerate(records):
            image = check_image(record.path)
            # datasets keeps only the path when the file exists: store bytes without it (the path column has it).
            # Otherwise the image keeps the absolute path to decode from; `push_to_hub` embeds the bytes instead.
            stored = {"path": None, "bytes": _rgb_bytes(image)} if needs_load_rgb(image) else {"path": record.path}
            yield (
                index,
                {
                    "image": {"bytes": None, **stored},
                    "person_id": record.person_id,
                    "camera_id": record.camera_id,
                    "path": relative_path(record.path, root),
                    "label": self._label_of.get(record.person_id, -1) if labeled else -1,
                },
            )


def _rgb_bytes(image: Image.Image) -> bytes:
    """`image` as `load_rgb` reads it, PNG-encoded: stored for the images `datasets.Image(mode="RGB")` would clip
    (16-bit, float) or whose transparency it would drop, so that every path sees the same picture."""
    buffer = io.BytesIO()
    load_rgb(image).save(buffer, format="PNG")
    return buffer.getvalue()


def build_dataset_dict(
    source: str,
    fingerprint: str,
    collection: ReIDCollection,
    cache_dir: str | os.PathLike | None = None,
) -> datasets.DatasetDict:
    """Build (or reuse from the cache) a `DatasetDict` with one split per split of `collection`.

    Labels are 0..K-1 over the sorted person ids of the `train` split, named by `collection.person_names` (or the
    id); every split has the same features, with ``label`` -1 outside `collection.labeled_splits` and ``path``
    relative to `collection.root`.
    """
    train_ids = sorted({record.person_id for record in collection.splits.get(TRAIN_SPLIT, ())})
    label_of = {person_id: label for label, person_id in enumerate(train_ids)}
    label_names = [collection.person_names.get(person_id, str(person_id)) for person_id in train_ids]
    builder = ReIDBuilder(
        collection=collection,
        label_names=label_names,
        label_of=label_of,
        cache_dir=str(cache_dir if cache_dir is not None else default_cache_dir()),
        dataset_name=source,
        config_name=source,
        source=source,
        fingerprint=fingerprint,
    )
    try:
        builder.download_and_prepare()
    except DatasetGenerationError as error:
        # `datasets` wraps errors raised while generating; surface our own clear message instead.
        cause = error.__cause__
        if isinstance(cause, ReIDDataError):
            raise ReIDDataError(str(cause)) from None
        raise
    dataset_dict = builder.as_dataset()
    # Keep the order the loader gave (train, query, gallery, ...).
    return datasets.DatasetDict({split: dataset_dict[split] for split in collection.splits})
