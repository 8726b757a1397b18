"""Verification threshold: at which cosine similarity are two images the same person?

[`calibrate_threshold`] picks the threshold from labelled validation images at a target false-match rate (FMR: the
fraction of different-person pairs accepted) and reports the true-match rate (TMR: the fraction of same-person pairs
accepted) there. A pair is declared the same person when `similarity > threshold`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np

from ..utils.errors import InvalidInputError
from .checks import JUNK_ID, ArrayLike, check_features, check_labels, to_numpy

logger = logging.getLogger(__name__)

__all__ = [
    "ThresholdCalibration",
    "calibrate_threshold",
    "calibrate_threshold_from_scores",
    "check_rate",
    "check_threshold",
    "resolve_verification",
]

_ROUNDING = 1e-4  # cosine similarities of float32 unit vectors may pass +-1 by rounding


def check_threshold(value: object, name: str = "verification_threshold") -> float:
    """`value` as a float if it is a finite cosine similarity in [-1, 1] (float rounding allowed), else a `ValueError`
    naming `name`: the one rule for a same-person threshold, wherever it enters (config, index, command line)."""
    number = _finite(value, name)
    if not -1.0 - _ROUNDING <= number <= 1.0 + _ROUNDING:
        raise InvalidInputError(f"{name} is a cosine similarity in [-1, 1], got {value!r}.")
    return number


def check_rate(value: object, name: str, *, open_interval: bool = False) -> float:
    """`value` as a float if it is a finite rate in [0, 1] (in (0, 1) with `open_interval`), else a `ValueError`."""
    number = _finite(value, name)
    inside = 0.0 < number < 1.0 if open_interval else 0.0 <= number <= 1.0
    if not inside:
        raise InvalidInputError(f"{name} must be in {'(0, 1)' if open_interval else '[0, 1]'}, got {value!r}.")
    return number


def _finite(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidInputError(f"{name} must be a number, got {value!r}.")
    if not math.isfinite(value):
        raise InvalidInputError(f"{name} must be a finite number, got {value!r}.")
    return float(value)


def resolve_verification(
    threshold: float | None, calibration: ThresholdCalibration | dict | None
) -> tuple[float | None, dict | None]:
    """`(threshold, calibration dict)` as a model config and a gallery index store them, checked in one place.

    A calibration (a [`ThresholdCalibration`] or its `to_dict()`) is checked whole; its threshold is the threshold
    when none is given, and must equal a given one. A threshold alone (set by hand) must be a cosine similarity.
    Raises `ValueError` naming the field and the fix.
    """
    if calibration is None:
        return (None if threshold is None else check_threshold(threshold)), None
    if not isinstance(calibration, (ThresholdCalibration, dict)):
        raise InvalidInputError(
            f"verification_calibration must be a ThresholdCalibration or its to_dict(), got {calibration!r}."
        )
    record = (
        calibration if isinstance(calibration, ThresholdCalibration) else ThresholdCalibration.from_dict(calibration)
    )
    if threshold is not None and threshold != record.threshold:
        raise InvalidInputError(
            f"verification_threshold ({threshold!r}) differs from the threshold of verification_calibration "
            f"({record.threshold!r}): a calibration's threshold equals verification_threshold; give one of them, or "
            "set both with set_verification_calibration(calibration)."
        )
    return record.threshold, record.to_dict()


@dataclass(frozen=True)
class ThresholdCalibration:
    """Result of [`calibrate_threshold`]: same person when `cosine similarity > threshold`.

    Attributes:
        threshold (`float`): the similarity threshold.
        target_false_match_rate (`float`): the requested FMR.
        false_match_rate (`float`): the FMR reached on the validation pairs (at most the target).
        true_match_rate (`float`): the fraction of same-person pairs above the threshold.
        num_genuine_pairs (`int`): same-person pairs used.
        num_impostor_pairs (`int`): different-person pairs used.
        calibrated_on (`str`, *optional*): the data the pairs came from, in words (e.g. "market1501 query split of
            ~/Market-1501: 3368 images, 750 people").

    Stored whole (`to_dict`) in a model config (`verification_calibration`) and a [`GalleryIndex`], so a verdict can
    name the false-match rate it was calibrated at; both check what they store with [`resolve_verification`]. Every
    field is checked when the object is made: a finite threshold in [-1, 1], rates in [0, 1], pair counts >= 0.
    """

    threshold: float
    target_false_match_rate: float
    false_match_rate: float
    true_match_rate: float
    num_genuine_pairs: int
    num_impostor_pairs: int
    calibrated_on: str | None = None

    def __post_init__(self):
        check_threshold(self.threshold, "threshold")
        check_rate(self.target_false_match_rate, "target_false_match_rate", open_interval=True)
        check_rate(self.false_match_rate, "false_match_rate")
        check_rate(self.true_match_rate, "true_match_rate")
        for name in ("num_genuine_pairs", "num_impostor_pairs"):
            count = getattr(self, name)
            if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
                raise InvalidInputError(f"{name} must be a whole number >= 0, got {count!r}.")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ThresholdCalibration:
        """The inverse of `to_dict`; a clear error naming the missing fields of a damaged record."""
        missing = sorted(name for name in cls.__dataclass_fields__ if name not in values and name != "calibrated_on")
        if missing:
            raise InvalidInputError(f"a threshold calibration needs the fields {missing}, got {sorted(values)}.")
        return cls(**{name: values[name] for name in cls.__dataclass_fields__ if name in values})


def _check_target(target_false_match_rate: float) -> None:
    check_rate(target_false_match_rate, "`target_false_match_rate`", open_interval=True)


def _calibration(
    genuine: np.ndarray,
    top_impostors: np.ndarray,
    num_impostors: int,
    target_false_match_rate: float,
    calibrated_on: str | None,
) -> ThresholdCalibration:
    """`top_impostors`: the highest impostor scores, sorted descending, at least `allowed + 1` of them (or all)."""
    if genuine.size == 0:
        raise InvalidInputError(
            "No same-person pairs: calibrating a threshold needs at least two images of one person."
        )
    if num_impostors == 0:
        raise InvalidInputError("No different-person pairs: calibrating a threshold needs at least two people.")
    allowed = math.floor(target_false_match_rate * num_impostors)  # impostor pairs that may be accepted
    if allowed == 0:
        logger.warning(
            "Only %d different-person pairs: the smallest measurable false-match rate is %.2g, above the target %.2g;"
            " the threshold rejects every validation impostor.",
            num_impostors,
            1 / num_impostors,
            target_false_match_rate,
        )
    threshold = float(top_impostors[allowed])  # `similarity > threshold` accepts at most `allowed` impostors
    accepted = int(np.count_nonzero(top_impostors[:allowed] > threshold))
    return ThresholdCalibration(
        threshold=threshold,
        target_false_match_rate=float(target_false_match_rate),
        false_match_rate=accepted / num_impostors,
        true_match_rate=float(np.count_nonzero(genuine > threshold) / genuine.size),
        num_genuine_pairs=int(genuine.size),
        num_impostor_pairs=int(num_impostors),
        calibrated_on=calibrated_on,
    )


def calibrate_threshold_from_scores(
    scores: ArrayLike,
    same_person: ArrayLike,
    target_false_match_rate: float = 1e-3,
    *,
    calibrated_on: str | None = None,
) -> ThresholdCalibration:
    """[`calibrate_threshold`] from explicit pairs: similarity `scores` and a `same_person` flag per pair.

    Example:
        ```python
        >>> calibrate_threshold_from_scores([0.9, 0.8, 0.3, 0.1], [True, True, False, False], 0.5).threshold
        0.1
        ```
    """
    _check_target(target_false_match_rate)
    scores_array = np.asarray(to_numpy(scores), dtype=np.float64).ravel()
    same = np.asarray(to_numpy(same_person)).ravel().astype(bool)
    if scores_array.shape != same.shape:
        raise InvalidInputError(
            f"`scores` has {scores_array.size} entries but `same_person` has {same.size}: they must match."
        )
    if not np.isfinite(scores_array).all():
        raise InvalidInputError("`scores` contains NaN or infinite values.")
    impostors = np.sort(scores_array[~same])[::-1]
    return _calibration(scores_array[same], impostors, impostors.size, target_false_match_rate, calibrated_on)


def calibrate_threshold(
    features: ArrayLike,
    person_ids: ArrayLike,
    target_false_match_rate: float = 1e-3,
    *,
    chunk_size: int = 1024,
    calibrated_on: str | None = None,
) -> ThresholdCalibration:
    """Cosine-similarity threshold at a target false-match rate, from all pairs of labelled validation images.

    Every unordered pair of distinct images is used: same person id = genuine pair, different ids = impostor pair;
    junk images (id -1) are ignored. Pairs are scored in chunks and only the highest impostor scores are kept, so
    tens of thousands of images (hundreds of millions of pairs) fit in memory.

    Args:
        features (`np.ndarray` or `torch.Tensor` of shape `(num_images, dim)`): embeddings (normalised here).
        person_ids (array of shape `(num_images,)`): person ids.
        target_false_match_rate (`float`, *optional*, defaults to 1e-3): largest accepted fraction of impostor pairs.
        chunk_size (`int`, *optional*, defaults to 1024): rows scored at a time.
        calibrated_on (`str`, *optional*): the data, in words, recorded in the result.

    Returns:
        [`ThresholdCalibration`]: the threshold (same person when `similarity > threshold`), the FMR reached, the
        TMR there and the numbers of pairs. Store it in the model config
        (`config.set_verification_calibration(calibration)`) or a [`GalleryIndex`]
        (`verification_calibration=calibration`) to get same-person flags from searches.

    Example:
        ```python
        >>> features = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0], [0.14, 0.99], [-1.0, 0.0]])
        >>> calibration = calibrate_threshold(features, [1, 1, 2, 2, 3], target_false_match_rate=0.25)
        >>> calibration.num_genuine_pairs, calibration.num_impostor_pairs, calibration.true_match_rate
        (2, 8, 1.0)
        >>> 0.14 <= calibration.threshold < 0.98
        True
        ```
    """
    _check_target(target_false_match_rate)
    array = check_features(features, "features")
    ids = check_labels(person_ids, "person_ids", len(array))
    keep = ids != JUNK_ID
    array, ids = array[keep], ids[keep]
    array = array / np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12)
    num_images = len(array)
    num_pairs = num_images * (num_images - 1) // 2
    _, counts = np.unique(ids, return_counts=True)
    num_genuine = int((counts * (counts - 1) // 2).sum())
    num_impostors = num_pairs - num_genuine
    keep_top = min(num_impostors, math.floor(target_false_match_rate * num_impostors) + 1)

    genuine_scores, top_impostors = [], np.empty(0, dtype=np.float32)
    for start in range(0, num_images, chunk_size):
        stop = min(start + chunk_size, num_images)
        similarities = array[start:stop] @ array[start:].T  # pairs (i, j) with j >= start
        upper = np.arange(start, stop)[:, None] < np.arange(start, num_images)[None, :]  # j > i only
        same = ids[start:stop, None] == ids[None, start:]
        genuine_scores.append(similarities[upper & same])
        impostors = similarities[upper & ~same]
        if keep_top and impostors.size:
            candidates = np.concatenate([top_impostors, impostors])
            top_impostors = np.partition(candidates, candidates.size - min(keep_top, candidates.size))[-keep_top:]
    return _calibration(
        np.concatenate(genuine_scores),
        np.sort(top_impostors)[::-1],
        num_impostors,
        target_false_match_rate,
        calibrated_on,
    )
