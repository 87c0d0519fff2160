"""MTS-Dialog (Ben Abacha et al., EACL 2023; CC BY 4.0) as normalized items.

Each CSV row is one doctor-patient dialogue snippet with the clinical-note section
it yields. Columns: ``ID, section_header, section_text, dialogue``; dialogues are
multi-line quoted fields, read with :mod:`csv` (never line by line).

Mapping of one row to a normalized item (task ``section_summary``):

- ``id``: ``mtsdialog-{split}-{ID}``
- ``domain`` / ``q_type``: the normalized section code (lower case, one of
  :data:`SECTION_CODES`) / ``"section_summary"``
- ``question``: the dialogue; ``answer``: ``"{CODE}#{section_text}"`` with ``CODE`` the
  upper-case code, the "<section code>#<summary>" target of the clinical-notes study
- ``meta``: ``split``, ``source_file`` (file name), ``row`` (1-based data row, header
  excluded), ``section_header`` (normalized) and ``section_text``.

Text handling: line endings are normalized to ``\\n`` (the training file uses
``\\r\\n`` inside dialogues, the others ``\\n``) and leading/trailing whitespace is
stripped; the lines of a dialogue are otherwise kept exactly as in the file.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from kmedqa.errors import InputError
from kmedqa.items import make_item
from kmedqa.metrics.sections import SECTION_CODES as _SECTION_CODES

DATASET = "mtsdialog"

#: The 20 normalized section headers of MTS-Dialog (README order), shared with scoring.
SECTION_CODES = _SECTION_CODES

#: File name -> split, for the released files.
SPLIT_FILES = {
    "MTS-Dialog-TrainingSet.csv": "train",
    "MTS-Dialog-ValidationSet.csv": "val",
    "MTS-Dialog-TestSet-1-MEDIQA-Chat-2023.csv": "test",
}

COLUMNS = ("ID", "section_header", "section_text", "dialogue")


def normalize_header(header: str) -> str:
    """``" FAM/SOCHX "`` -> ``"fam/sochx"`` (no aliasing beyond case and whitespace)."""
    return header.strip().lower()


def _clean(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def load_mtsdialog(path_or_dir: str | Path, split: str | None = None) -> list[dict[str, Any]]:
    """Load MTS-Dialog items from one CSV file or from the release directory.

    A directory loads the three released files (train, val, test, in that order) or,
    with ``split``, only that split's file. A single file takes its split from
    ``split`` or else from its released file name.
    """
    path = Path(path_or_dir)
    if path.is_dir():
        by_split = {s: name for name, s in SPLIT_FILES.items()}
        if split is not None and split not in by_split:
            raise InputError(
                f"unknown split {split!r} (expected one of {', '.join(by_split)})", file=path
            )
        wanted = [split] if split is not None else list(by_split)
        items: list[dict[str, Any]] = []
        for s in wanted:
            f = path / by_split[s]
            if not f.is_file():
                raise InputError(f"MTS-Dialog file {by_split[s]} not found in directory", file=path)
            items.extend(_load_file(f, s))
        return items
    if not path.exists():
        raise InputError("file not found", file=path)
    if split is None:
        split = SPLIT_FILES.get(path.name)
        if split is None:
            raise InputError(
                "cannot tell the split from the file name; pass split= (train, val or test)",
                file=path,
            )
    return _load_file(path, split)


def _load_file(path: Path, split: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        for col in COLUMNS:
            if col not in header:
                raise InputError(
                    f"missing column (found: {', '.join(header) or 'no header'})",
                    file=path,
                    field=col,
                )
        try:
            for row_no, row in enumerate(reader, 1):
                items.append(_row_to_item(row, row_no, split, path, seen))
        except csv.Error as err:
            raise InputError(
                f"malformed CSV near line {reader.line_num} ({err})", file=path
            ) from None
    return items


def _row_to_item(
    row: dict[str, Any], row_no: int, split: str, path: Path, seen: dict[str, int]
) -> dict[str, Any]:
    raw_id = row.get("ID")
    rid = raw_id.strip() if isinstance(raw_id, str) else ""
    where = rid or f"row {row_no}"
    if not rid:
        raise InputError(f"empty ID in data row {row_no}", file=path, item=where, field="ID")
    if rid in seen:
        raise InputError(
            f"duplicate ID (also data row {seen[rid]})", file=path, item=rid, field="ID"
        )
    seen[rid] = row_no
    if None in row:  # csv.DictReader puts surplus cells under the key None
        raise InputError("row has more cells than the header", file=path, item=rid, field="ID")
    values = {}
    for col in ("section_header", "section_text", "dialogue"):
        value = row.get(col)
        if value is None:
            raise InputError(
                "missing cell (row shorter than the header)", file=path, item=rid, field=col
            )
        value = _clean(value)
        if not value:
            raise InputError("empty", file=path, item=rid, field=col)
        values[col] = value
    code = normalize_header(values["section_header"])
    if code not in SECTION_CODES:
        raise InputError(
            f"unknown section header {values['section_header']!r} (expected one of the 20 "
            "MTS-Dialog codes, e.g. GENHX, FAM/SOCHX)",
            file=path,
            item=rid,
            field="section_header",
        )
    return make_item(
        id=f"{DATASET}-{split}-{rid}",
        dataset=DATASET,
        task="section_summary",
        domain=code,
        q_type="section_summary",
        question=values["dialogue"],
        answer=f"{code.upper()}#{values['section_text']}",
        meta={
            "split": split,
            "source_file": path.name,
            "row": row_no,
            "section_header": code,
            "section_text": values["section_text"],
        },
    )
