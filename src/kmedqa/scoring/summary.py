"""Grouped means of score rows: overall, per ``by`` column and all of them crossed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kmedqa.metrics.semantic import SEMANTIC_COLUMNS
from kmedqa.scoring.columns import METRIC_COLUMNS


def _sort_key(values: tuple) -> tuple:
    return tuple((v is None, str(v)) for v in values)


def summarize(
    rows: Sequence[dict[str, Any]],
    by: Sequence[str] = ("q_type", "domain"),
    metrics: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Mean and count of every metric per group, within each (run, eval_set).

    Groups: ``overall``, each column of ``by`` alone, and all of ``by`` crossed (named
    ``"q_type+domain"``). Each output dict has ``run``, ``eval_set``, ``group``, one label
    column per ``by`` column (None where the group does not split by it, or where the
    value itself is null), ``n`` (rows in the group) and, per metric, the mean over the
    rows where it is not null (``None`` if there is none) and ``n_<metric>``, and
    ``truncation_rate`` / ``n_truncated``: the share and number of outputs that hit their
    token budget (``None`` where the generation lines do not say). ``metrics``
    defaults to :data:`METRIC_COLUMNS` plus the BERTScore/BLEURT columns the rows have.
    """
    if metrics is None:
        metrics = (*METRIC_COLUMNS, *(c for c in SEMANTIC_COLUMNS if any(c in r for r in rows)))
    by = tuple(by)
    groupings: list[tuple[str, ...]] = [()] + [(c,) for c in by]
    if len(by) > 1:
        groupings.append(by)
    out: list[dict[str, Any]] = []
    partitions: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        partitions.setdefault((row.get("run"), row.get("eval_set")), []).append(row)
    for (run, eval_set), prows in sorted(partitions.items(), key=lambda kv: _sort_key(kv[0])):
        for cols in groupings:
            groups: dict[tuple, list[dict[str, Any]]] = {}
            for row in prows:
                groups.setdefault(tuple(row.get(c) for c in cols), []).append(row)
            for key in sorted(groups, key=_sort_key):
                members = groups[key]
                entry: dict[str, Any] = {
                    "run": run,
                    "eval_set": eval_set,
                    "group": "+".join(cols) if cols else "overall",
                }
                entry.update(dict.fromkeys(by))
                entry.update(zip(cols, key, strict=True))
                entry["n"] = len(members)
                entry["n_not_answered"] = sum(r.get("status", "ok") != "ok" for r in members)
                entry["formats"] = format_counts(members)
                for m in metrics:
                    vals = [r[m] for r in members if r.get(m) is not None]
                    entry[m] = sum(vals) / len(vals) if vals else None
                    entry[f"n_{m}"] = len(vals)
                hits = [r["hit_budget"] for r in members if r.get("hit_budget") is not None]
                entry["truncation_rate"] = sum(hits) / len(hits) if hits else None
                entry["n_truncated"] = sum(hits) if hits else None
                out.append(entry)
    return out


def format_counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """``{"mcq_number (inferred)": 37, …}``: how each row's prompt format was decided."""
    counts: dict[str, int] = {}
    for r in rows:
        if r.get("format") is not None:
            key = f"{r['format']} ({r.get('format_source') or 'item'})"
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
