"""Which prompt format an item's answer is scored with, also for items from elsewhere.

Inside the workflow every item carries ``meta.format`` (set at prepare time) and every
generation line its format. ``kmedqa score`` on a user's own items in the documented schema,
or on another tool's outputs, may have neither: then the format is inferred from the item —
numbered options in the question ("1) …") or a reference answer like "3) …" → ``mcq_number``;
lettered options → ``mcq_letter``; any other item → ``instruct`` (no answer format). ``--format
NAME`` overrides all of it. Where the format came from is kept in each row (``format_source``)
and counted in the summary, so an inferred format is never silent.
"""

from __future__ import annotations

import re
from typing import Any

from kmedqa.prompts import DATASET_FORMATS, DEFAULT_FORMAT

SOURCES = ("override", "eval_set", "generation", "item", "dataset", "inferred")

_NUMBERED_OPTION = re.compile(r"(?m)^\s*[1-9]\s*[).]\s*\S")
_NUMBERED_ANSWER = re.compile(r"^\s*[1-9]\s*\)")


def infer_format(item: dict[str, Any]) -> str:
    """``mcq_number``, ``mcq_letter`` or ``instruct`` from the item's own fields."""
    if item.get("task") != "mcq":
        return DEFAULT_FORMAT
    answer = item.get("answer") or ""
    if _NUMBERED_ANSWER.match(answer) or _NUMBERED_OPTION.search(item.get("question") or ""):
        return "mcq_number"
    return "mcq_letter" if item.get("options") else "mcq_number"


def resolve_format(
    item: dict[str, Any], gen: dict[str, Any], override: str | None = None
) -> tuple[str, str]:
    """(format name, where it came from: one of :data:`SOURCES`)."""
    if override:
        return override, "override"
    if gen.get("format"):
        return gen["format"], "generation"
    meta_format = (item.get("meta") or {}).get("format")
    if meta_format:
        return meta_format, "item"
    if item.get("dataset") in DATASET_FORMATS:
        return DATASET_FORMATS[item["dataset"]], "dataset"
    return infer_format(item), "inferred"
