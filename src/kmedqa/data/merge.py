"""Merge several item sources into one, removing exact duplicates.

Two items are duplicates when their question, options and answer are equal after
:func:`kmedqa.decontam.normalize_text` (NFKC, lower case, punctuation and symbols
removed, whitespace collapsed), compared field by field. Options are part of the
key so that two MCQ items with the same stem but different choices both stay.
Sources are taken in the declared order and the first occurrence wins, within a
source as across sources. Every kept item gets ``meta.source`` (the source name;
an item that already has one, e.g. from an earlier merge, keeps it).

Two different items with the same ``id`` are an error: renaming ids would cut them
from their origin.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from kmedqa.data.decontam import normalize_text
from kmedqa.errors import InputError

NORMALIZATION = "NFKC, lower case, punctuation/symbols removed, whitespace collapsed; key = (question, options, answer)"


def dedup_key(item: dict[str, Any]) -> tuple[str, tuple[str, ...], str]:
    opts = item.get("options") or []
    return (
        normalize_text(str(item.get("question") or "")),
        tuple(normalize_text(str(o)) for o in opts),
        normalize_text(str(item.get("answer") or "")),
    )


def merge_sources(
    sources: Sequence[tuple[str, Iterable[dict[str, Any]]]],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Merge ``[(source_name, items), ...]``; return ``(items, report)``.

    ``report`` (for the manifest): ``order``, ``normalization``, ``n_input``,
    ``n_kept``, ``n_dropped``; ``sources[name] = {input, kept, dropped,
    dropped_duplicate_of: {source: count}}``; ``duplicates``: one record per dropped
    item ``{id, source, duplicate_of, duplicate_of_source}``.
    """
    names = [name for name, _ in sources]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(f"source name {dup!r} given twice")
    kept: list[dict[str, Any]] = []
    by_key: dict[tuple, tuple[str, str]] = {}  # key -> (id, source)
    by_id: dict[str, str] = {}  # id -> source
    per_source: dict[str, dict[str, Any]] = {}
    duplicates: list[dict[str, str]] = []
    for name, items in sources:
        stats = {"input": 0, "kept": 0, "dropped": 0, "dropped_duplicate_of": {}}
        per_source[name] = stats
        for item in items:
            stats["input"] += 1
            key = dedup_key(item)
            if key in by_key:
                first_id, first_src = by_key[key]
                stats["dropped"] += 1
                of = stats["dropped_duplicate_of"]
                of[first_src] = of.get(first_src, 0) + 1
                duplicates.append(
                    {
                        "id": item["id"],
                        "source": name,
                        "duplicate_of": first_id,
                        "duplicate_of_source": first_src,
                    }
                )
                continue
            if item["id"] in by_id:
                raise InputError(
                    f"same id as a different item of source {by_id[item['id']]!r} "
                    f"(merging source {name!r})",
                    item=item["id"],
                    field="id",
                )
            new = copy.deepcopy(item)
            meta = new.get("meta")
            if not isinstance(meta, dict):
                meta = {}
                new["meta"] = meta
            meta.setdefault("source", name)
            by_key[key] = (item["id"], name)
            by_id[item["id"]] = name
            kept.append(new)
            stats["kept"] += 1
    n_input = sum(s["input"] for s in per_source.values())
    report = {
        "order": names,
        "normalization": NORMALIZATION,
        "n_input": n_input,
        "n_kept": len(kept),
        "n_dropped": n_input - len(kept),
        "sources": per_source,
        "duplicates": duplicates,
    }
    return kept, report
