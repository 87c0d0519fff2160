"""Declared data filters, applied between prepare and split (``datasets.<name>.filters``).

``filters`` is a list; each entry has exactly one key, the filter, and they run **in the
declared order**: an item dropped by one filter is not seen by the next, so each filter's
counts are of what it dropped among the items that reached it. Filters:

- ``length: {question: {min: 10, max: 4000}, answer: {min: 1}}`` — bounds on the number
  of characters (Unicode code points, as stored in the item) of ``question``, ``answer``
  and/or ``options`` (joined by newlines); ``min``/``max`` are inclusive, either may be left out.
- ``hangul: {min_share: 0.5, fields: [question, answer]}`` — language check: the share of
  Hangul among the *letters* of the named fields joined (:func:`kmedqa.metrics.lang.script_counts`:
  digits, punctuation and spaces are not letters) must be at least ``min_share``. A text
  with no letter at all has share 0 and is dropped.
- ``near_duplicate: {threshold: 0.8}`` — near-duplicate removal with the decontamination
  machinery (:mod:`kmedqa.data.decontam`): character 5-grams of the normalized question
  (with options), exact Jaccard >= ``threshold`` against every item kept so far (prefix
  filtering, so no pair is missed); the first item wins, in file order (for a merged
  dataset: the declared source order).
- ``patterns: {patterns: [...], file: path, fields: [question, answer], ignore_case: true}``
  — keyword/regex screen: an item whose named fields match any pattern (Python ``re``,
  ``search``) is dropped. ``file`` holds one pattern a line (blank lines and lines starting
  with ``#`` are skipped); ``patterns`` and ``file`` may be combined.

The report (``filters.json`` beside ``prepare.json``) gives, per filter, what it saw and
dropped in total and **per source** (``meta.source`` of a merged item, else its dataset),
with the dropped ids (and, for near duplicates, the kept item each one duplicates).
A dataset without ``filters`` has no filter step at all.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kmedqa.data.decontam import NearDupIndex, question_shingles
from kmedqa.errors import ConfigError
from kmedqa.metrics.lang import script_counts

FILTERS = ("length", "hangul", "near_duplicate", "patterns")
FIELDS = ("question", "options", "answer")


def source_of(item: dict[str, Any]) -> str:
    """The source an item is counted under: ``meta.source`` (merged items), else its dataset."""
    return (item.get("meta") or {}).get("source") or item["dataset"]


def field_text(item: dict[str, Any], field: str) -> str:
    if field == "options":
        return "\n".join(map(str, item.get("options") or []))
    return str(item.get(field) or "")


def _kind(spec: dict[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(f"{where}: each filter is one key ({', '.join(FILTERS)})")
    ((kind, params),) = spec.items()
    if kind not in FILTERS:
        raise ConfigError(f"{where}: unknown filter {kind!r} ({', '.join(FILTERS)})")
    return kind, dict(params or {})


def describe(kind: str, params: dict[str, Any]) -> str:
    """A short label of a filter and its parameters (report and paper table)."""
    if kind == "length":
        parts = []
        for f in FIELDS:
            if f in params:
                lo, hi = params[f].get("min"), params[f].get("max")
                parts.append(f"{f} {lo if lo is not None else 0}–{hi if hi is not None else '∞'}")
        return "length (chars): " + ", ".join(parts)
    if kind == "hangul":
        return f"Hangul share of letters ≥ {params['min_share']:g} ({'+'.join(params['fields'])})"
    if kind == "near_duplicate":
        return f"near duplicate (char 5-gram Jaccard ≥ {params['threshold']:g})"
    n = len(load_patterns(params))
    src = f", {Path(params['file']).name}" if params.get("file") else ""
    return f"keyword/regex screen ({n} patterns{src})"


def load_patterns(params: dict[str, Any]) -> list[str]:
    """The declared patterns, then those of ``file`` (one a line), each checked to compile."""
    pats = [(p, "filters.patterns.patterns") for p in params.get("patterns") or []]
    if params.get("file"):
        path = Path(params["file"])
        if not path.is_file():
            raise ConfigError(
                f"filters.patterns.file: {path} does not exist; write one pattern a line there"
            )
        for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                pats.append((line.strip(), f"{path} line {n}"))
    for p, where in pats:
        try:
            re.compile(p)
        except re.error as err:
            raise ConfigError(f"{where}: pattern {p!r} is not a valid regex ({err})") from None
    return [p for p, _ in pats]


def _length(params: dict[str, Any]) -> Callable[[dict[str, Any]], str | None]:
    bounds = {f: params[f] for f in FIELDS if f in params}
    if not bounds:
        raise ConfigError("filters.length: give bounds for question, answer and/or options")

    def check(item):
        for f, b in bounds.items():
            n = len(field_text(item, f))
            if b.get("min") is not None and n < b["min"]:
                return f"{f} {n} < {b['min']} chars"
            if b.get("max") is not None and n > b["max"]:
                return f"{f} {n} > {b['max']} chars"
        return None

    return check


def _hangul(params: dict[str, Any]) -> Callable[[dict[str, Any]], str | None]:
    share, fields = params["min_share"], params["fields"]

    def check(item):
        letters, hangul, _ = script_counts("\n".join(field_text(item, f) for f in fields))
        got = hangul / letters if letters else 0.0
        return f"Hangul share {got:.3f} < {share:g}" if got < share else None

    return check


def _patterns(params: dict[str, Any]) -> Callable[[dict[str, Any]], str | None]:
    flags = re.IGNORECASE if params["ignore_case"] else 0
    compiled = [(p, re.compile(p, flags)) for p in load_patterns(params)]
    fields = params["fields"]

    def check(item):
        text = "\n".join(field_text(item, f) for f in fields)
        for p, rx in compiled:
            if rx.search(text):
                return p
        return None

    return check


def _near_duplicates(
    items: list[dict[str, Any]], threshold: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    sets = [question_shingles(it) for it in items]
    index = NearDupIndex(sets, threshold)
    kept, dropped = [], []
    for i, (item, s) in enumerate(zip(items, sets, strict=True)):
        hits = index.matches(s)
        if hits:
            j, jac = max(hits, key=lambda h: (h[1], -h[0]))  # most similar, then earliest
            first = items[j]
            dropped.append(
                {
                    "id": item["id"],
                    "source": source_of(item),
                    "duplicate_of": first["id"],
                    "duplicate_of_source": source_of(first),
                    "jaccard": round(jac, 4),
                }
            )
            continue
        index.add(i, s)
        kept.append(item)
    return kept, dropped


def apply_filters(
    items: Iterable[dict[str, Any]], filters: list[dict[str, Any]], dataset: str = ""
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run ``filters`` in order over ``items``; return ``(kept items, report)`` (module doc)."""
    items = list(items)
    where = f"datasets.{dataset}.filters" if dataset else "filters"
    report: dict[str, Any] = {
        "dataset": dataset,
        "n_input": len(items),
        "input_per_source": dict(sorted(Counter(map(source_of, items)).items())),
        "filters": [],
    }
    for step, spec in enumerate(filters, 1):
        kind, params = _kind(spec, f"{where}[{step - 1}]")
        seen = len(items)
        if kind == "near_duplicate":
            items, dropped = _near_duplicates(items, params["threshold"])
        else:
            check = {"length": _length, "hangul": _hangul, "patterns": _patterns}[kind](params)
            kept, dropped = [], []
            for item in items:
                why = check(item)
                if why is None:
                    kept.append(item)
                else:
                    dropped.append({"id": item["id"], "source": source_of(item), "reason": why})
            items = kept
        report["filters"].append(
            {
                "step": step,
                "filter": kind,
                "label": describe(kind, params),
                "params": params,
                "n_seen": seen,
                "n_dropped": len(dropped),
                "dropped_per_source": dict(sorted(Counter(d["source"] for d in dropped).items())),
                "dropped": dropped,
            }
        )
    report["n_kept"] = len(items)
    report["kept_per_source"] = dict(sorted(Counter(map(source_of, items)).items()))
    if not items:
        raise ConfigError(f"{where}: the filters dropped every item; loosen them")
    return items, report


def pattern_files(filters: list[dict[str, Any]] | None) -> list[str]:
    """Files the filters read (the rule's inputs, so that editing one reruns the step)."""
    return [
        spec["patterns"]["file"]
        for spec in filters or []
        if isinstance(spec, dict) and "patterns" in spec and (spec["patterns"] or {}).get("file")
    ]


def filters_table(reports: list[dict[str, Any]]):
    """Paper table: per dataset and source, items in, dropped by each filter (in order), kept."""
    from kmedqa.paper.tables import Table

    labels: list[str] = []
    for r in reports:
        for f in r["filters"]:
            if f["label"] not in labels:
                labels.append(f["label"])
    cols = ["dataset", "source", "prepared", *[f"{i}. {lab}" for i, lab in enumerate(labels, 1)]]
    t = Table(
        "data_filters",
        "Declared data filters: items dropped per source, in the order the filters ran",
        [*cols, "kept"],
    )
    for r in reports:
        by_label = {f["label"]: f for f in r["filters"]}
        for src in [*r["input_per_source"], "all"]:
            row = [r["dataset"], src]
            row.append(r["n_input"] if src == "all" else r["input_per_source"][src])
            for lab in labels:
                f = by_label.get(lab)
                if f is None:
                    row.append("–")
                else:
                    row.append(
                        f["n_dropped"] if src == "all" else f["dropped_per_source"].get(src, 0)
                    )
            row.append(r["n_kept"] if src == "all" else r["kept_per_source"].get(src, 0))
            t.rows.append(row)
    t.notes.append(
        "Each filter sees only the items the filters before it kept; "
        "'prepared' is what the loader wrote, 'kept' what goes to the split."
    )
    return t
