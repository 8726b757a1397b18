"""The course set of the LA-Transformer paper: folders ``001``..``114``, one per person, 16 images each
(2 cameras x 8 angles).

Identity assignment (explicit, seeded, configurable): the sorted person ids are permuted with
``numpy.random.default_rng(seed)`` (``seed=0`` by default); the first ``num_train_ids`` (62) form ``train``, the next
``num_val_ids`` (12) the validation ids, split into ``query`` / ``gallery``, and all remaining ids (40 in the full set)
the test ids, split into ``test_query`` / ``test_gallery`` (left out when there are none). ``train_ids``,
``val_ids`` and ``test_ids`` fix a group's ids explicitly instead. With ``test_ids`` given no group takes "the rest",
so ids left over after the ``train`` and validation draws raise `ReIDDataError` naming them (add them to an id list
or raise ``num_train_ids`` / ``num_val_ids``). Query and gallery images of a person are disjoint:
by camera where every file name carries one (``c1``, ``cam1``, ...; the lowest camera is the query), else
alternately; see :mod:`hf_lareid.data.identity_folders`.

Example:
    >>> from hf_lareid.data import load_reid_dataset
    >>> course = load_reid_dataset("course", data_dir="course_set")  # doctest: +SKIP
    >>> course["train"].features["label"].num_classes  # doctest: +SKIP
    62
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .identity_folders import collect_grouped_folders
from .records import ReIDCollection

__all__ = ["COURSE_SPLITS", "collect_course"]

COURSE_SPLITS = ("train", "query", "gallery", "test_query", "test_gallery")


def collect_course(
    data_dir: str | os.PathLike,
    splits: Sequence[str] | None = None,
    num_train_ids: int = 62,
    num_val_ids: int = 12,
    train_ids: Sequence[int] | None = None,
    val_ids: Sequence[int] | None = None,
    test_ids: Sequence[int] | None = None,
    seed: int = 0,
    query_rule: str = "auto",
) -> ReIDCollection:
    """Parse the course folder into the splits of :data:`COURSE_SPLITS` (module docstring for the rules)."""
    return collect_grouped_folders(
        data_dir,
        "Course set folder",
        group_splits={"train": ("train",), "val": ("query", "gallery"), "test": ("test_query", "test_gallery")},
        counts={"train": num_train_ids, "val": num_val_ids, "test": None},
        explicit={"train": train_ids, "val": val_ids, "test": test_ids},
        seed=seed,
        query_rule=query_rule,
        splits=splits,
    )
