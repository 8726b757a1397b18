"""The one `datasets` builder that writes re-ID records into the Arrow cache.

Loaders parse folders into :class:`~hf_lareid.data._common.ReIDCollection` objects; :class:`ReIDBuilder` writes them
(checking every image once) and :func:`build_dataset_dict` returns the cached `DatasetDict`. Every split has the same
features (``label`` is -1 outside the training identities) and ``path`` is relative to the data folder, so a
`DatasetDict` pushes to the Hub as it is and shares no local paths. The cache key is the
folder digest of :func:`~hf_lareid.data._common.folder_digest`, so a changed or moved folder is rebuilt.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
from datasets.exceptions import DatasetGenerationError

from ._common import ReIDCollection, ReIDDataError, ReIDRecord, check_image, relative_path

logger = logging.getLogger(__name__)

__all__ = ["ReIDBuilder", "ReIDBuilderConfig", "build_dataset_dict", "clear_reid_cache", "default_cache_dir"]

_DESCRIPTION = "Person re-identification images with person and camera ids, split for training and retrieval."
_HOMEPAGE = "https://github.com/SiddhantKapil/LA-Transformer"
_LICENSE = "The license of the source folder applies; this builder only indexes it."
_CITATION = """@article{zheng2015scalable,
  title={Scalable Person Re-identification: A Benchmark},
  author={Zheng, Liang and Shen, Liyue and Tian, Lu and Wang, Shengjin and Wang, Jingdong and Tian, Qi},
  journal={ICCV}, year={2015}
}"""

TRAIN_SPLIT = "train"


def default_cache_dir() -> Path:
    """Where re-ID builds are cached: ``$HF_DATASETS_CACHE/hf_lareid`` (``~/.cache/huggingface/datasets/hf_lareid``)."""
    return Path(datasets.config.HF_DATASETS_CACHE) / "hf_lareid"


def clear_reid_cache(cache_dir: str | os.PathLike | None = None) -> None:
    """Delete every cached re-ID build under `cache_dir` (default :func:`default_cache_dir`); source folders stay."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if folder.exists():
        shutil.rmtree(folder)
        logger.info("Removed the re-ID dataset cache %s", folder)


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
            raise ValueError("ReIDBuilderConfig needs a non-empty `source` and `fingerprint`.")


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
            check_image(record.path)
            yield index, {
                # The image keeps the absolute path to decode from; `push_to_hub` embeds the bytes instead.
                "image": {"path": record.path, "bytes": None},
                "person_id": record.person_id,
                "camera_id": record.camera_id,
                "path": relative_path(record.path, root),
                "label": self._label_of.get(record.person_id, -1) if labeled else -1,
            }


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
