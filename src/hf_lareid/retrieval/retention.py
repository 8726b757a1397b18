"""Retention and erasure: which gallery entries a removal selects (people, paths, cameras, age), for every backend.

Each entry records when it was added (`added_at`, UTC POSIX seconds); `older_than` selects by that time. The FAISS
index evaluates the selection on its metadata arrays ([`matching_entries`]); the Qdrant index turns the same criteria
into a database filter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Optional, Union

import numpy as np

from ..utils.errors import InvalidInputError

OlderThan = Union[None, str, datetime, timedelta]
# What a removal (`matching`, `remove`) selects entries by: each backend documents them on its `matching`.
CRITERIA = ("person_ids", "paths", "camera_ids", "older_than")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def utc_now() -> datetime:
    """The system clock in UTC (what an index uses unless given a `clock`)."""
    return datetime.now(timezone.utc)


def parse_older_than(value: Union[str, datetime, timedelta], now: datetime) -> datetime:
    """The UTC cut-off meant by `value`: an ISO 8601 date-time (no zone = UTC), a duration before `now` (`"30d"`,
    `"12h"`, `"90m"`, `"45s"`, `"2w"`) or a `timedelta`."""
    if isinstance(value, timedelta):
        return now - value
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    match = _DURATION.match(str(value))
    if match:
        return now - timedelta(**{_DURATION_UNITS[match.group(2)]: float(match.group(1))})
    try:
        moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(
            f"older_than {value!r} is neither an ISO 8601 date-time (2026-01-31T00:00:00Z) nor a duration (30d, 12h, "
            "90m, 45s, 2w)."
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def removal_criteria(criteria: Mapping[str, Any]) -> dict[str, Any]:
    """The criteria given (not `None`), by name, out of `CRITERIA`.

    Raises:
        `TypeError`: a name that is not a criterion. `ValueError`: none given (a removal must say what it removes).
    """
    unknown = sorted(set(criteria) - set(CRITERIA))
    if unknown:
        raise TypeError(
            f"Unknown removal criteria {unknown}: select entries by person_ids, paths, camera_ids and/or older_than."
        )
    given = {name: value for name, value in criteria.items() if value is not None}
    if not given:
        raise InvalidInputError("Say what to remove: person_ids, paths, camera_ids and/or older_than.")
    return given


def matching_entries(
    criteria: dict, field: Callable[[str], Optional[np.ndarray]], added_at: np.ndarray, now: datetime
) -> np.ndarray:
    """`(num_entries,)` bool: the entries matching every criterion of [`removal_criteria`].

    Args:
        criteria (`dict`): the criteria given, by name.
        field (callable): a metadata column by name (`"person_ids"`, `"camera_ids"`, `"paths"`), `None` if not stored.
        added_at (`np.ndarray` of shape `(num_entries,)`, float64): when each entry was added (NaN: not recorded,
            never older).
        now (`datetime`): the time durations count back from.
    """
    selected = np.ones(len(added_at), dtype=bool)
    for name in ("person_ids", "camera_ids", "paths"):
        if name not in criteria:
            continue
        values = field(name)
        if values is None:
            raise InvalidInputError(f"This index stores no {name}: it cannot select entries by them.")
        wanted = [str(v) for v in criteria[name]] if name == "paths" else np.asarray(criteria[name], dtype=np.int64)
        selected &= np.isin(values, wanted)
    if "older_than" in criteria:
        cutoff = parse_older_than(criteria["older_than"], now).timestamp()
        selected &= added_at < cutoff  # NaN (not recorded) is never older
    return selected
