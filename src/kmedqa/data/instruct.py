"""Generic instruction data (e.g. Korean consultation QA) as normalized items.

Input: a JSON file holding a list of objects, or a JSON-lines file (one object a
line); the format is told from the content (a file whose first non-blank
character is ``[`` is a JSON list), not from the extension. Fields of a record:

- ``question`` (required, text) and ``answer`` (required, text)
- ``instruction`` (optional text): when non-empty, the item's question is
  ``instruction + "\\n\\n" + question`` (instruction first, as the Gemma-2-2b-it
  report's question / instruction / answer records are prompted); the original
  pieces stay in ``meta.instruction`` and ``meta.input_question``
- ``id`` (optional, text or integer): item id ``{dataset}-{id}``; without it the
  id is ``{dataset}-{sha256(instruction, question, answer)[:16]}``, stable across
  reruns and file reorderings
- ``domain`` (optional text or null), ``q_type`` (optional text or null)

Other fields are kept under ``meta.fields``. ``meta`` also has ``source_file``
(the file name) and ``row`` (1-based record number).

Task: ``short`` when the answer is a single line of at most
:data:`SHORT_ANSWER_MAX_CHARS` (50) characters, else ``descriptive``. This is a
heuristic on the reference answer only: the prompt formats give short answers 64
new tokens and descriptive ones 256, and a one-line answer of <= 50 characters is a
word or phrase, not an explanation. Pass ``task=`` to force one task for a whole
file. ``q_type`` comes from the record, else it is the task.

Two records with the same id are an error (for hashed ids: the same instruction,
question and answer twice) unless ``drop_duplicates=True``, which keeps the first;
cross-source duplicates are the business of :func:`kmedqa.data.merge.merge_sources`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kmedqa.errors import InputError
from kmedqa.io import read_text, sha256_text
from kmedqa.items import make_item

SHORT_ANSWER_MAX_CHARS = 50
KNOWN_FIELDS = ("id", "question", "instruction", "answer", "domain", "q_type")


def choose_task(answer: str) -> str:
    """``short`` for a one-line answer of <= SHORT_ANSWER_MAX_CHARS characters."""
    return (
        "short" if len(answer) <= SHORT_ANSWER_MAX_CHARS and "\n" not in answer else "descriptive"
    )


def content_id(instruction: str, question: str, answer: str) -> str:
    return sha256_text("\x1f".join((instruction, question, answer)))[:16]


def _records(path: Path, encoding: str | None = None) -> list[tuple[int, Any]]:
    if not path.is_file():
        raise InputError("file not found", file=path)
    text = read_text(path, encoding)
    stripped = text.lstrip()
    if not stripped:
        raise InputError("file is empty", file=path)
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"not valid JSON ({err.msg}, line {err.lineno})", file=path) from None
        return list(enumerate(data, 1))
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append((lineno, json.loads(line)))
        except json.JSONDecodeError as err:
            raise InputError(
                f"line {lineno} is not valid JSON ({err.msg}); expected a JSON list or JSON lines",
                file=path,
            ) from None
    return out


def _text(
    rec: Mapping[str, Any], key: str, path: Path, where: str, *, required: bool
) -> str | None:
    value = rec.get(key)
    if value is None:
        if required:
            raise InputError("missing", file=path, item=where, field=key)
        return None
    if not isinstance(value, str):
        raise InputError(
            f"must be text, not {type(value).__name__}", file=path, item=where, field=key
        )
    value = value.strip()
    if required and not value:
        raise InputError("empty", file=path, item=where, field=key)
    return value


def load_instruct(
    path: str | Path,
    dataset_name: str,
    *,
    task: str | None = None,
    drop_duplicates: bool = False,
    encoding: str | None = None,
) -> list[dict[str, Any]]:
    """Load question / instruction / answer records as normalized items (see module doc)."""
    path = Path(path)
    if not dataset_name or not isinstance(dataset_name, str):
        raise ValueError("dataset_name must be a non-empty string")
    if task is not None and task not in ("short", "descriptive"):
        raise ValueError("task must be 'short', 'descriptive' or None")
    items: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for row, rec in _records(path, encoding):
        where = f"row {row}"
        if not isinstance(rec, dict):
            raise InputError(
                f"record is a {type(rec).__name__}, not an object", file=path, item=where
            )
        raw_id = rec.get("id")
        if raw_id is not None:
            if (
                isinstance(raw_id, bool)
                or not isinstance(raw_id, (str, int))
                or not str(raw_id).strip()
            ):
                raise InputError(
                    "must be non-empty text or an integer", file=path, item=where, field="id"
                )
            where = str(raw_id).strip()
        question = _text(rec, "question", path, where, required=True)
        answer = _text(rec, "answer", path, where, required=True)
        instruction = _text(rec, "instruction", path, where, required=False) or ""
        domain = _text(rec, "domain", path, where, required=False) or None
        q_type = _text(rec, "q_type", path, where, required=False) or None
        local = where if raw_id is not None else content_id(instruction, question, answer)
        iid = f"{dataset_name}-{local}"
        if iid in seen:
            if drop_duplicates:
                continue
            what = "id" if raw_id is not None else "instruction, question and answer"
            raise InputError(
                f"duplicate {what} (also row {seen[iid]}); remove it or load with drop_duplicates",
                file=path,
                item=where if raw_id is not None else f"row {row}",
                field="id" if raw_id is not None else "question",
            )
        seen[iid] = row
        item_task = task or choose_task(answer)
        meta: dict[str, Any] = {"source_file": path.name, "row": row}
        if instruction:
            meta["instruction"] = instruction
            meta["input_question"] = question
        extra = {k: v for k, v in rec.items() if k not in KNOWN_FIELDS}
        if extra:
            meta["fields"] = extra
        items.append(
            make_item(
                id=iid,
                dataset=dataset_name,
                task=item_task,
                domain=domain,
                q_type=q_type or item_task,
                question=f"{instruction}\n\n{question}" if instruction else question,
                answer=answer,
                meta=meta,
            )
        )
    if not items:
        raise InputError("no records", file=path)
    return items
