"""Any folder with one sub-folder per person (CUHK01, VIPeR-style sets, your own photos).

Layout: ``data_dir/<person>/<image>`` (images may sit in nested folders such as ``<person>/cam1/x.jpg``). A person
folder named by a number (``001``) gets that number as `person_id`; if any folder name is not a number, all persons
are numbered 1..N in sorted name order and the folder names become the `ClassLabel` names. The camera comes from
the path inside the person folder by :data:`~hf_lareid.data.file_names.CAMERA_PATTERN` (``c1``, ``cam1``, ...), else -1.

Identities are split, by a seeded permutation of the sorted ids (or explicit id lists), into groups; a training group
becomes split ``train``, an evaluation group becomes a query and a gallery split by the query rule:

- ``"camera"``: the images of each person's lowest camera id are queries, all others gallery;
- ``"alternate"``: images 0, 2, 4, ... (sorted by path) are queries, 1, 3, 5, ... gallery;
- ``"auto"`` (default): ``"camera"`` when every image of the person has a known camera and there are at least two,
  else ``"alternate"``.

A person with a single image cannot be both query and gallery: its image goes to the gallery (a distractor) and a
warning names the folder.

Example:
    >>> from hf_lareid.data import load_reid_dataset
    >>> people = load_reid_dataset("identity_folders", data_dir="my_people", num_train_ids=50)  # doctest: +SKIP
    >>> sorted(people)  # doctest: +SKIP
    ['gallery', 'query', 'train']
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..utils.errors import InvalidInputError
from .file_names import parse_camera_id
from .folders import list_image_files, require_folder
from .records import ReIDCollection, ReIDDataError, ReIDRecord

logger = logging.getLogger(__name__)

__all__ = ["QUERY_RULES", "assign_ids", "collect_identity_folders", "read_person_folders", "split_query_gallery"]

QUERY_RULES = ("auto", "camera", "alternate")


def read_person_folders(root: Path) -> tuple[dict[int, list[ReIDRecord]], dict[int, str]]:
    """Records per person id and the folder name per person id, for every non-empty person folder in `root`."""
    person_folders = sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))
    if not person_folders:
        raise ReIDDataError(
            f"Folder {root} has no person sub-folders. Expected one folder per person (e.g. {root}/001/img.jpg); "
            'for the Market-1501 layout use load_reid_dataset("market1501", ...).'
        )
    numeric = all(folder.name.isdigit() for folder in person_folders)
    images_of, names = {}, {}
    for index, folder in enumerate(person_folders):
        person_id = int(folder.name) if numeric else index + 1
        images = list_image_files(folder, recursive=True)
        if not images:
            logger.warning("Person folder %s holds no images; it is skipped.", folder)
            continue
        if person_id in images_of:
            raise ReIDDataError(
                f"Person folders {names[person_id]} and {folder.name} in {root} both mean person id {person_id}; "
                "rename one of them."
            )
        images_of[person_id] = [
            ReIDRecord(path, person_id, parse_camera_id(Path(os.path.relpath(path, folder)).as_posix()))
            for path in images
        ]
        names[person_id] = folder.name
    return images_of, names


def assign_ids(
    person_ids: Sequence[int],
    counts: Mapping[str, int | float | None],
    explicit: Mapping[str, Sequence[int] | None],
    seed: int,
) -> dict[str, list[int]]:
    """Split `person_ids` into named groups.

    Groups with an explicit id list take exactly those ids; the others take, in order, the next `counts[group]` ids
    of a permutation of the remaining sorted ids drawn with `numpy.random.default_rng(seed)`; a float count is a
    fraction of all ids (rounded down) and None takes all that remain. Every id must end in a group: when the group
    that takes the rest (count None) has an explicit list, ids left over after the counted draws raise
    `ReIDDataError` naming them (an explicit list is never widened silently). Also raises `ReIDDataError` for
    unknown or overlapping ids and when there are too few ids.

    Example:
        >>> groups = assign_ids(range(1, 11), {"train": 6, "test": None}, {}, seed=0)
        >>> len(groups["train"]), len(groups["test"]), set(groups["train"]) & set(groups["test"])
        (6, 4, set())
    """
    available = sorted(person_ids)
    groups: dict[str, list[int]] = {}
    taken: set[int] = set()
    for group, ids in explicit.items():
        if ids is None:
            continue
        ids = sorted(int(person_id) for person_id in ids)
        unknown = sorted(set(ids) - set(available))
        overlap = sorted(set(ids) & taken)
        if unknown:
            raise ReIDDataError(f"{group}_ids {unknown} are not person folders of this set; pick from {available}.")
        if overlap:
            raise ReIDDataError(f"Person ids {overlap} are listed in more than one of the *_ids options.")
        groups[group] = ids
        taken.update(ids)
    remaining = [person_id for person_id in available if person_id not in taken]
    order = [remaining[i] for i in np.random.default_rng(seed).permutation(len(remaining))]
    for group, count in counts.items():
        if group in groups:
            continue
        if isinstance(count, float):
            count = int(count * len(available))
        if count is not None and count > len(order):
            raise ReIDDataError(
                f"Need {count} ids for the {group!r} group but only {len(order)} person folders are left "
                f"(of {len(available)}); lower num_{group}_ids or add person folders."
            )
        chosen, order = (order, []) if count is None else (order[:count], order[count:])
        groups[group] = sorted(chosen)
    if order:
        leftover = sorted(order)
        shown = ", ".join(str(person_id) for person_id in leftover[:20]) + (", ..." if len(leftover) > 20 else "")
        given = [f"{group}_ids" for group in groups if explicit.get(group) is not None]
        drawn = [f"num_{group}_ids" for group in groups if explicit.get(group) is None]
        rest = [f"{group}_ids" for group, count in counts.items() if count is None]
        fixes = [f"add them to one of {', '.join(given)}"] if given else ["give one group the count None"]
        fixes += [f"raise {' / '.join(drawn)} to draw them"] if drawn else []
        fixes += [f"leave out {' / '.join(rest)} so that group takes the rest"] if rest else []
        raise ReIDDataError(
            f"{len(leftover)} person id(s) fall in no group: [{shown}]. "
            + (f"With {', '.join(given)} given, no" if given else "No")
            + f" group takes the ids left after the draws; {', '.join(fixes[:-1])}"
            + (" or " if len(fixes) > 1 else "")
            + f"{fixes[-1]}."
        )
    return groups


def split_query_gallery(
    records: Sequence[ReIDRecord], rule: str = "auto", folder: str | None = None
) -> tuple[list[ReIDRecord], list[ReIDRecord]]:
    """Split one person's `records` into disjoint (query, gallery) lists by `rule` (see the module docstring)."""
    if rule not in QUERY_RULES:
        raise InvalidInputError(f"query_rule={rule!r} is not one of {QUERY_RULES}.")
    records = sorted(records, key=lambda record: record.path)
    if len(records) == 1:
        logger.warning(
            "Person folder %s has a single image: it cannot be both query and gallery, so it goes to the gallery "
            "only. Add a second image to use this person as a query.",
            folder or records[0].path,
        )
        return [], list(records)
    cameras = {record.camera_id for record in records}
    by_camera = -1 not in cameras and len(cameras) >= 2
    if rule == "camera" and not by_camera:
        raise ReIDDataError(
            f"query_rule='camera' needs at least two known cameras per person, but {folder} has cameras "
            f"{sorted(cameras)} (-1 = no c1/cam1 token in the file name). Use query_rule='alternate' or rename files."
        )
    if rule != "alternate" and by_camera:
        query_camera = min(cameras)
        query = [record for record in records if record.camera_id == query_camera]
        gallery = [record for record in records if record.camera_id != query_camera]
        return query, gallery
    return list(records[0::2]), list(records[1::2])


def _evaluation_splits(
    images_of: Mapping[int, list[ReIDRecord]], names: Mapping[int, str], ids: Sequence[int], rule: str, root: Path
) -> tuple[list[ReIDRecord], list[ReIDRecord]]:
    query, gallery = [], []
    for person_id in ids:
        person_query, person_gallery = split_query_gallery(images_of[person_id], rule, str(root / names[person_id]))
        query += person_query
        gallery += person_gallery
    return query, gallery


def collect_grouped_folders(
    data_dir: str | os.PathLike,
    what: str,
    group_splits: Mapping[str, tuple[str, ...]],
    counts: Mapping[str, int | float | None],
    explicit: Mapping[str, Sequence[int] | None],
    seed: int,
    query_rule: str,
    splits: Sequence[str] | None,
) -> ReIDCollection:
    """Shared body of the folder-per-person loaders: read, assign ids to groups, make the splits of each group.

    `group_splits` maps a group to its split names: one name (a training split) or two (query, gallery).
    Splits of empty groups are left out unless asked for in `splits`.
    """
    root = require_folder(data_dir, what, "Pass data_dir= pointing at the folder with one sub-folder per person.")
    if query_rule not in QUERY_RULES:
        raise InvalidInputError(f"query_rule={query_rule!r} is not one of {QUERY_RULES}.")
    images_of, names = read_person_folders(root)
    groups = assign_ids(list(images_of), counts, explicit, seed)
    known = [split for names_ in group_splits.values() for split in names_]
    unknown = sorted(set(splits or ()) - set(known))
    if unknown:
        raise InvalidInputError(f"Unknown split(s) {unknown} for {what}; choose from {known}.")
    records: dict[str, list[ReIDRecord]] = {}
    for group, split_names in group_splits.items():
        ids = groups[group]
        if len(split_names) == 1:
            records[split_names[0]] = [record for person_id in ids for record in images_of[person_id]]
        else:
            records[split_names[0]], records[split_names[1]] = _evaluation_splits(
                images_of, names, ids, query_rule, root
            )
    wanted = list(splits) if splits is not None else [split for split in known if records[split]]
    for group, ids in groups.items():
        logger.info("%s: %s group holds %d ids", root, group, len(ids))
    return ReIDCollection(
        root=root,
        splits={split: records[split] for split in wanted},
        person_names=dict(names),
        folders={split: root for split in wanted},
    )


def collect_identity_folders(
    data_dir: str | os.PathLike,
    splits: Sequence[str] | None = None,
    num_train_ids: int | None = None,
    train_fraction: float = 0.5,
    train_ids: Sequence[int] | None = None,
    test_ids: Sequence[int] | None = None,
    seed: int = 0,
    query_rule: str = "auto",
) -> ReIDCollection:
    """Parse a folder-per-person set into ``train``, ``query`` and ``gallery`` splits.

    Args:
        data_dir: folder with one sub-folder per person.
        splits: splits to return (default: those that are not empty).
        num_train_ids: identities drawn for ``train``; the rest form query/gallery. 0 makes an evaluation-only set.
        train_fraction: share of the identities drawn for ``train`` (rounded down) when `num_train_ids` is None.
        train_ids / test_ids: explicit person ids per group (override the draw). With `test_ids` given, ids that
            neither `test_ids` nor the ``train`` draw takes raise `ReIDDataError` naming them (set `num_train_ids`
            to the number of remaining ids to train on all of them).
        seed: seed of the id permutation.
        query_rule: ``"auto"``, ``"camera"`` or ``"alternate"`` (module docstring).
    """
    if not 0.0 <= train_fraction <= 1.0:
        raise InvalidInputError(f"train_fraction must be in [0, 1], got {train_fraction}.")
    return collect_grouped_folders(
        data_dir,
        "Identity folder",
        group_splits={"train": ("train",), "test": ("query", "gallery")},
        counts={"train": float(train_fraction) if num_train_ids is None else num_train_ids, "test": None},
        explicit={"train": train_ids, "test": test_ids},
        seed=seed,
        query_rule=query_rule,
        splits=splits,
    )
