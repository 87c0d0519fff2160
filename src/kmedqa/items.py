"""The normalized item: the one record every loader writes and every stage reads.

Fields (DESIGN.md): ``id, dataset, task, domain, q_type, question, options,
answer, answer_index, meta``. ``task`` is one of :data:`TASKS`. Options are
lettered with :data:`OPTION_LETTERS` (``A`` is option 1) wherever a letter is shown
or read: prompts, MCQ scoring, the judge, KorMedMCQA's option columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kmedqa.errors import InputError
from kmedqa.io import dumps, read_jsonl, sha256_text

TASKS = ("mcq", "short", "descriptive", "section_summary")
OPTION_LETTERS = "ABCDEFGHIJ"  # the letter of options 1..10
FIELDS = (
    "id",
    "dataset",
    "task",
    "domain",
    "q_type",
    "question",
    "options",
    "answer",
    "answer_index",
    "meta",
)


def lettered_options(options: list[str] | None) -> str:
    """``A. first\nB. second…``: an item's options as they are shown with letters."""
    return "\n".join(f"{OPTION_LETTERS[i]}. {o}" for i, o in enumerate(options or []))


def make_item(
    *,
    id: str,
    dataset: str,
    task: str,
    question: str,
    answer: str,
    domain: str | None = None,
    q_type: str | None = None,
    options: list[str] | None = None,
    answer_index: int | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    item = {
        "id": id,
        "dataset": dataset,
        "task": task,
        "domain": domain,
        "q_type": q_type,
        "question": question,
        "options": options,
        "answer": answer,
        "answer_index": answer_index,
        "meta": meta or {},
    }
    validate_item(item)
    return item


def validate_item(item: dict[str, Any], file: str | Path | None = None) -> None:
    """Raise :class:`InputError` naming file, item id and field for a malformed item."""
    iid = item.get("id")
    if not isinstance(iid, str) or not iid:
        raise InputError("missing or empty id", file=file, field="id")
    for key in FIELDS:
        if key not in item:
            raise InputError("missing field", file=file, item=iid, field=key)
    if item["task"] not in TASKS:
        raise InputError(
            f"unknown task {item['task']!r} (expected one of {', '.join(TASKS)})",
            file=file,
            item=iid,
            field="task",
        )
    for key in ("question", "answer"):
        if not isinstance(item[key], str) or not item[key].strip():
            raise InputError("must be non-empty text", file=file, item=iid, field=key)
    opts = item["options"]
    if item["task"] == "mcq":
        if (
            not isinstance(opts, list)
            or len(opts) < 2
            or not all(isinstance(o, str) and o.strip() for o in opts)
        ):
            raise InputError(
                "an mcq item needs a list of >= 2 non-empty options",
                file=file,
                item=iid,
                field="options",
            )
        idx = item["answer_index"]
        if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < len(opts):
            raise InputError(
                f"must be an integer in 0..{len(opts) - 1}",
                file=file,
                item=iid,
                field="answer_index",
            )
    elif opts is not None and not isinstance(opts, list):
        raise InputError("must be a list or null", file=file, item=iid, field="options")
    if not isinstance(item["meta"], dict):
        raise InputError("must be an object", file=file, item=iid, field="meta")


def validate_items(items: Iterable[dict[str, Any]], file: str | Path | None = None) -> None:
    """Validate every item; a duplicate id is an error too."""
    seen: set[str] = set()
    for item in items:
        validate_item(item, file=file)
        if item["id"] in seen:
            raise InputError("duplicate id", file=file, item=item["id"], field="id")
        seen.add(item["id"])


def read_items(path: str | Path, encoding: str | None = None) -> list[dict[str, Any]]:
    """Read and validate a normalized items file; duplicate ids are an error."""
    items = read_jsonl(path, encoding)
    validate_items(items, file=path)
    return items


def item_sha(item: dict[str, Any]) -> str:
    """What ties a generation (and its scores) to its item: a hash of the item's dataset,
    id, question, options and answer (16 hex digits). Two items files that share ids but
    not content (MTS-Dialog test sets 1 and 2 before ids named their file) differ here."""
    keys = ("dataset", "id", "question", "options", "answer")
    return sha256_text(dumps({k: item.get(k) for k in keys}))[:16]


def check_item_shas(
    items: Iterable[dict[str, Any]],
    rows_by_id: dict[str, dict[str, Any]],
    *,
    file: str | Path | None,
    items_file: str | Path | None,
) -> None:
    """Refuse rows (generations, scores) made for other items: the first id whose
    ``item_sha`` differs from its item's is named. Rows without ``item_sha`` pass."""
    for item in items:
        row = rows_by_id.get(item["id"])
        if row is None or row.get("item_sha") is None:
            continue
        if row["item_sha"] != item_sha(item):
            where = f" in {items_file}" if items_file else ""
            raise InputError(
                f"made for another item than the one with this id{where} (item_sha "
                f"{row['item_sha']} vs {item_sha(item)}): these lines belong to another items "
                "file; regenerate them for this one",
                file=file,
                item=item["id"],
                field="item_sha",
            )
