"""The results table that `lareid evaluate` and `lareid demo` print: one Markdown row per evaluated split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["format_results_table"]


def format_results_table(rows: Sequence[Mapping], digits: int = 1) -> str:
    """A Markdown table of result rows (`{"name": ..., **evaluate_reid(...)}`): percentages of rank-k, mAP, mINP.

    Example:
        ```python
        >>> print(format_results_table([{"name": "market1501", "rank1": 0.9, "rank5": 0.95, "rank10": 0.97,
        ...     "mAP": 0.8, "mINP": 0.5, "num_queries": 3368, "num_skipped_queries": 0}]))
        | name | Rank-1 | Rank-5 | Rank-10 | mAP | mINP | queries | skipped |
        ...
        ```
    """
    columns = [("rank1", "Rank-1"), ("rank5", "Rank-5"), ("rank10", "Rank-10"), ("mAP", "mAP"), ("mINP", "mINP")]
    header = "| name | " + " | ".join(title for _, title in columns) + " | queries | skipped |"
    lines = [header, "|" + "---|" * (len(columns) + 3)]
    for row in rows:
        values = " | ".join(f"{100 * row[key]:.{digits}f}" for key, _ in columns)
        lines.append(f"| {row.get('name', '')} | {values} | {row['num_queries']} | {row['num_skipped_queries']} |")
    return "\n".join(lines)
