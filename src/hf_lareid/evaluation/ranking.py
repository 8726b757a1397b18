"""Ranking core: CMC, mAP and mINP from blocks of query x gallery distances, without sorting whole gallery rows.

Ranking rule: for each query, the gallery is ordered by distance (smallest first); equal distances keep gallery
order (a stable sort by distance, then gallery index).

How it stays fast and bounded in memory: queries are processed in chunks whose distance block fits a memory budget,
and no gallery row is ever fully sorted. The rank of a positive (a valid gallery item of the query's identity) is the
number of valid gallery items that come before it, so one comparison pass counts the items closer than the easiest
positive, and only the few items between the easiest and the hardest positive are ordered exactly. The CMC needs the
rank of the first positive and mAP/mINP the ranks of all positives, which this gives directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import numpy as np
from tqdm.auto import tqdm

from ..utils.errors import InvalidInputError
from .checks import JUNK_ID
from .distance import query_chunk_size

logger = logging.getLogger(__name__)

__all__ = ["PROTOCOLS", "evaluate_blocks"]

PROTOCOLS = ("market1501", "cuhk03", "no-camera")


def _group_lookup(gallery_keys: np.ndarray, query_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All `(query_row, gallery_col)` pairs with `gallery_keys[col] == query_keys[row]`, without a dense mask."""
    order = np.argsort(gallery_keys, kind="stable")
    sorted_keys = gallery_keys[order]
    low = np.searchsorted(sorted_keys, query_keys, side="left")
    counts = np.searchsorted(sorted_keys, query_keys, side="right") - low
    rows = np.repeat(np.arange(len(query_keys)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(low, counts)
    return rows, order[offsets]


def _sort_keys(distances: np.ndarray, flat: np.ndarray, gallery_bits: int) -> np.ndarray:
    """Int64 keys ordering the items `flat` (flat indices into the C-contiguous `(B, G)` block `distances`) by row,
    then distance, then gallery column: `row << (32 + gallery_bits) | monotone(distance) << gallery_bits | column`.

    The keys are written into `flat`'s buffer (which is returned), so the working memory is the keys plus 12 bytes
    of scratch per item. `monotone` maps float32 to [0, 2**32) with integer order == float order (-0.0 == 0.0).
    """
    num_gallery = distances.shape[1]
    values = distances.reshape(-1)[flat]
    values += np.float32(0.0)  # -0.0 -> +0.0
    bits = values.view(np.int32)
    flip = bits >> 31  # negative floats: flip the magnitude bits so that the signed integer order is the float order
    flip &= 0x7FFFFFFF
    bits ^= flip
    del flip
    rows = flat // num_gallery
    np.remainder(flat, num_gallery, out=flat)  # flat -> column
    rows <<= 32 + gallery_bits
    flat |= rows
    del rows
    monotone = bits.astype(np.int64)
    del values, bits
    monotone += 2**31
    monotone <<= gallery_bits
    flat |= monotone
    return flat


def _positive_ranks(distances: np.ndarray, positive_flat: np.ndarray, num_positives: np.ndarray) -> np.ndarray:
    """0-based rank of every positive among the valid items of its row, ascending per row, rows one after the other.

    `positive_flat`: flat indices of the positives into the `(B, G)` block `distances` (its buffer is reused for the
    sort keys). Items strictly closer than a row's easiest positive are only counted; those between the easiest and
    the hardest positive (ties included) are ordered exactly by (distance, gallery index).
    """
    num_rows, num_gallery = distances.shape
    used = num_positives > 0
    row_start = np.cumsum(num_positives) - num_positives
    gallery_bits = max(1, int(num_gallery - 1).bit_length())
    row_shift = 32 + gallery_bits

    # Positives, as sort keys sorted by (row, distance, column): flat indices are row-major, so each row's
    # positives are contiguous and the easiest / hardest positive of a row are reductions over its segment.
    positive_distances = distances.reshape(-1)[positive_flat]
    lowest = np.full(num_rows, np.inf, dtype=np.float32)
    highest = np.full(num_rows, -np.inf, dtype=np.float32)
    lowest[used] = np.minimum.reduceat(positive_distances, row_start[used])
    highest[used] = np.maximum.reduceat(positive_distances, row_start[used])
    del positive_distances
    positive_keys = _sort_keys(distances, positive_flat, gallery_bits)
    positive_keys.sort()

    num_closer = np.count_nonzero(distances < lowest[:, None], axis=1)
    in_window = distances >= lowest[:, None]
    in_window &= distances <= highest[:, None]
    window_keys = np.flatnonzero(in_window)
    del in_window
    window_keys = _sort_keys(distances, window_keys, gallery_bits)
    # Bins: row r has num_positives[r] + 1 bins, bin j counting the window items after positive j - 1 and at or
    # before positive j. A window item's global bin is (positives sorted before it) + (its row).
    bins = np.searchsorted(positive_keys, window_keys)
    window_keys >>= row_shift  # -> row
    bins += window_keys
    del window_keys
    cumulative = np.bincount(bins, minlength=len(positive_keys) + num_rows)
    del bins
    np.cumsum(cumulative, out=cumulative)
    sorted_rows = positive_keys
    sorted_rows >>= row_shift  # in place: the keys are no longer needed
    del positive_keys
    row_last_bin = row_start + np.arange(num_rows) + num_positives  # the bin after the row's last positive
    before_row = np.zeros(num_rows, dtype=np.int64)  # window items in earlier rows
    before_row[1:] = cumulative[row_last_bin[:-1]]
    ranks = np.delete(cumulative, row_last_bin)  # window items up to positive j (all rows)
    del cumulative
    ranks -= before_row[sorted_rows]
    ranks += num_closer[sorted_rows]
    ranks -= 1
    return ranks


@dataclass
class _QueryChunk:
    """Labels of the queries `offset .. offset + B` of one distance block."""

    ids: np.ndarray
    cams: Optional[np.ndarray]
    path_codes: Optional[np.ndarray]
    offset: int


@dataclass
class _GalleryLabels:
    ids: np.ndarray
    cams: Optional[np.ndarray]
    path_codes: Optional[np.ndarray]
    junk_cols: np.ndarray


class _Ranker:
    """Accumulates positive ranks per query chunk; shared by all protocols."""

    def __init__(self, protocol: str, hist_length: int, num_repeats: int, seed: int):
        self.protocol = protocol
        self.first_match_hist = np.zeros(hist_length + 1, dtype=np.float64)  # last bin: beyond hist_length
        self.average_precisions: list[np.ndarray] = []
        self.inverse_negative_penalties: list[np.ndarray] = []
        self.num_skipped = 0
        self.num_repeats = num_repeats
        self.rng = np.random.default_rng(seed)

    def add_chunk(
        self, distances: np.ndarray, queries: _QueryChunk, gallery: _GalleryLabels, exclude_same_index: bool
    ) -> None:
        """`distances`: `(B, G)` float32 array for the B queries of `queries` (modified in place).

        Working memory: see `BYTES_PER_PAIR`; every large temporary is released as soon as it is used.
        """
        distances = np.ascontiguousarray(distances)
        positive = self._exclude_invalid(distances, queries, gallery, exclude_same_index)
        num_positives = np.count_nonzero(positive, axis=1)
        self.num_skipped += int((num_positives == 0).sum())
        if not num_positives.any():
            return
        positive_flat = np.flatnonzero(positive)
        del positive
        ranks = _positive_ranks(distances, positive_flat, num_positives)
        del positive_flat  # its buffer held the sort keys: released before the precisions are allocated
        used = num_positives > 0
        row_start = np.cumsum(num_positives) - num_positives
        first_ranks = ranks[row_start[used]]
        self._add_precisions(ranks, row_start, num_positives)
        if self.protocol == "cuhk03":
            for row in np.flatnonzero(used):
                self._add_single_gallery_shot(distances[row], gallery.ids, queries.ids[row])
        else:
            cap = len(self.first_match_hist) - 1
            self.first_match_hist += np.bincount(np.minimum(first_ranks, cap), minlength=cap + 1)

    def _exclude_invalid(
        self, distances: np.ndarray, queries: _QueryChunk, gallery: _GalleryLabels, exclude_same_index: bool
    ) -> np.ndarray:
        """Sets the distance of invalid gallery items to +inf (junk, same person seen by the same camera, the query
        image itself) and returns the `(B, G)` bool mask of the valid positives."""
        num_rows, num_gallery = distances.shape
        if gallery.junk_cols.size:
            distances[:, gallery.junk_cols] = np.inf
        positive = queries.ids[:, None] == gallery.ids[None, :]  # (B, G) bool
        if self.protocol != "no-camera":
            same_cam = queries.cams[:, None] == gallery.cams[None, :]
            same_cam &= positive
            distances[same_cam] = np.inf
            positive ^= same_cam  # same_cam is a subset of positive
            del same_cam
        if queries.path_codes is not None:
            path_rows, path_cols = _group_lookup(gallery.path_codes, queries.path_codes)
            distances[path_rows, path_cols] = np.inf
            del path_rows, path_cols
        if exclude_same_index:
            self_rows = np.arange(num_rows)
            self_cols = self_rows + queries.offset
            inside = self_cols < num_gallery
            distances[self_rows[inside], self_cols[inside]] = np.inf
        positive &= np.isfinite(distances)  # junk-id queries and excluded self-matches are not positives
        return positive

    def _add_precisions(self, ranks: np.ndarray, row_start: np.ndarray, num_positives: np.ndarray) -> None:
        """Average precision and inverse negative penalty of each query with positives, from the 0-based ranks of
        its positives (`ranks`, ascending per row, rows one after the other); `ranks` is modified in place."""
        used = num_positives > 0
        last_ranks = ranks[row_start[used] + num_positives[used] - 1]
        precisions = np.arange(1, len(ranks) + 1, dtype=np.float64)
        precisions -= np.repeat(row_start.astype(np.float64), num_positives)  # 1-based index within the row
        ranks += 1
        precisions /= ranks
        precision_sums = np.add.reduceat(precisions, row_start[used])
        del precisions
        self.average_precisions.append(precision_sums / num_positives[used])
        self.inverse_negative_penalties.append(num_positives[used] / (last_ranks + 1.0))

    def _add_single_gallery_shot(self, row_distances: np.ndarray, gallery_ids: np.ndarray, query_id: int) -> None:
        """CUHK03 CMC as torchreid's `eval_cuhk03`: per repeat, one random gallery image per identity."""
        valid = np.flatnonzero(np.isfinite(row_distances))
        ranking = valid[np.argsort(row_distances[valid], kind="stable")]
        identities, inverse, counts = np.unique(gallery_ids[ranking], return_inverse=True, return_counts=True)
        members = np.argsort(inverse, kind="stable")  # ranking positions grouped by identity, ascending
        starts = np.cumsum(counts) - counts
        picks = starts + (self.rng.random((self.num_repeats, len(identities))) * counts).astype(np.int64)
        positions = members[picks]  # (repeats, identities): ranking position of each sampled image
        query_position = positions[:, np.searchsorted(identities, query_id)]
        first_ranks = (positions < query_position[:, None]).sum(axis=1)
        cap = len(self.first_match_hist) - 1
        self.first_match_hist += np.bincount(np.minimum(first_ranks, cap), minlength=cap + 1) / self.num_repeats


def evaluate_blocks(
    distance_blocks: Callable[[int, int], np.ndarray],
    query_ids: np.ndarray,
    gallery_ids: np.ndarray,
    query_cams: Optional[np.ndarray],
    gallery_cams: Optional[np.ndarray],
    query_paths: Optional[np.ndarray],
    gallery_paths: Optional[np.ndarray],
    exclude_same_index: bool,
    max_rank: int,
    protocol: str,
    memory_budget_mb: float,
    num_repeats: int,
    seed: int,
    show_progress: bool,
) -> dict:
    num_query, num_gallery = len(query_ids), len(gallery_ids)
    query_path_codes = gallery_path_codes = None
    if query_paths is not None and gallery_paths is not None:
        _, codes = np.unique(np.concatenate([query_paths, gallery_paths]), return_inverse=True)
        query_path_codes, gallery_path_codes = codes[:num_query], codes[num_query:]
    gallery = _GalleryLabels(
        gallery_ids, gallery_cams, gallery_path_codes, np.flatnonzero(gallery_ids == JUNK_ID).astype(np.int64)
    )
    ranker = _Ranker(protocol, max(max_rank, 10), num_repeats, seed)
    # The exact ordering packs (row, distance, gallery index) into one int64 key: 32 distance bits, the rest shared.
    gallery_bits = max(1, (num_gallery - 1).bit_length())
    if gallery_bits > 30:
        raise InvalidInputError(f"A gallery of {num_gallery} images is too large to rank in one piece; split it.")
    chunk = min(query_chunk_size(num_gallery, memory_budget_mb), 2 ** (31 - gallery_bits))
    starts = range(0, num_query, chunk)
    for start in tqdm(starts, desc="Ranking queries", unit="chunk", disable=not show_progress or len(starts) < 2):
        stop = min(start + chunk, num_query)
        queries = _QueryChunk(
            query_ids[start:stop],
            None if query_cams is None else query_cams[start:stop],
            None if query_path_codes is None else query_path_codes[start:stop],
            start,
        )
        ranker.add_chunk(distance_blocks(start, stop), queries, gallery, exclude_same_index)

    num_valid = num_query - ranker.num_skipped
    if num_valid == 0:
        hint = (
            " Under this protocol, gallery images of the query's person taken by the query's camera are not "
            "matches. If your data has no camera ids (or a single camera), use protocol='no-camera'."
            if protocol != "no-camera"
            else " Does the gallery contain the query identities (person ids other than -1)?"
        )
        raise InvalidInputError(
            f"No query has a valid match in the gallery under protocol={protocol!r} ({num_query} queries, "
            f"{num_gallery} gallery images).{hint}"
        )
    if ranker.num_skipped:
        logger.info(
            "%d of %d queries have no valid match in the gallery and were skipped.", ranker.num_skipped, num_query
        )
    cmc_full = np.cumsum(ranker.first_match_hist)[:-1] / num_valid
    return {
        "cmc": cmc_full[:max_rank],
        "rank1": float(cmc_full[0]),
        "rank5": float(cmc_full[4]),
        "rank10": float(cmc_full[9]),
        "mAP": float(np.concatenate(ranker.average_precisions).mean()),
        "mINP": float(np.concatenate(ranker.inverse_negative_penalties).mean()),
        "num_queries": int(num_valid),
        "num_skipped_queries": int(ranker.num_skipped),
    }
