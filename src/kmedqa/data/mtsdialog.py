"""MTS-Dialog (Ben Abacha et al., EACL 2023; CC BY 4.0) as normalized items.

Each CSV row is one doctor-patient dialogue snippet with the clinical-note section
it yields. Columns: ``ID, section_header, section_text, dialogue``; dialogues are
multi-line quoted fields, read with :mod:`csv` (never line by line).

Mapping of one row to a normalized item (task ``section_summary``):

- ``id``: ``mtsdialog-{tag}-{ID}``, ``tag`` naming the file, so that files never share
  ids: the split for the three main files (``mtsdialog-test-0``), ``test2`` for test set 2
  (MEDIQA-Sum 2023), ``aug1``..``aug3`` for the augmented training sets, else the file
  name's stem (lower case, ``[a-z0-9_]``)
- ``domain`` / ``q_type``: the normalized section code (lower case, one of
  :data:`SECTION_CODES`) / ``"section_summary"``
- ``question``: the dialogue; ``answer``: ``"{CODE}#{section_text}"`` with ``CODE`` the
  upper-case code, the "<section code>#<summary>" target of the clinical-notes study
- ``meta``: ``split``, ``source_file`` (file name), ``row`` (1-based data row, header
  excluded), ``section_header`` (normalized) and ``section_text``.

A file other than the three main ones needs its split from the caller (``split=``,
``kmedqa prepare mtsdialog --split``, config ``datasets.<name>.split_of_file``).

Section headers are normalized by :func:`kmedqa.metrics.sections.normalize_section`, the
function scoring uses (``"Past Medical HX"`` is ``pastmedicalhx`` in both).

Hostile input: a file in another encoding stops with a hint (or is read with
``encoding=``); NUL bytes are stripped with a warning; the CSV is parsed strictly, and a
cell holding a line that starts like a data row (``<ID>,<section code>,``) stops the
load: an unterminated quote swallowed the rows after it.

Text handling: line endings are normalized to ``\\n`` (the training file uses
``\\r\\n`` inside dialogues, the others ``\\n``) and leading/trailing whitespace is
stripped; the lines of a dialogue are otherwise kept exactly as in the file.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from kmedqa.errors import InputError
from kmedqa.io import read_text
from kmedqa.items import make_item
from kmedqa.metrics.sections import SECTION_CODES as _SECTION_CODES
from kmedqa.metrics.sections import normalize_section

DATASET = "mtsdialog"

#: The 20 normalized section headers of MTS-Dialog (README order), shared with scoring.
SECTION_CODES = _SECTION_CODES

#: File name -> split, for the released files.
SPLIT_FILES = {
    "MTS-Dialog-TrainingSet.csv": "train",
    "MTS-Dialog-ValidationSet.csv": "val",
    "MTS-Dialog-TestSet-1-MEDIQA-Chat-2023.csv": "test",
}

#: File name -> id tag, for released files outside the main three (split from the caller).
FILE_TAGS = {
    "MTS-Dialog-TestSet-2-MEDIQA-Sum-2023.csv": "test2",
    "MTS-Dialog-Augmented-TrainingSet-1-En-FR-EN-2402-Pairs.csv": "aug1",
    "MTS-Dialog-Augmented-TrainingSet-2-EN-ES-EN-2402-Pairs.csv": "aug2",
    "MTS-Dialog-Augmented-TrainingSet-3-FR-and-ES-3603-Pairs-final.csv": "aug3",
}

SPLITS = ("train", "val", "test")

COLUMNS = ("ID", "section_header", "section_text", "dialogue")

# A line inside a cell that starts like a data row: "<ID>,<section header>,".
_ROW_START = re.compile(r"\n(\d{1,7}),\"?([A-Za-z][A-Za-z/_ ]{1,19})\"?,")


def normalize_header(header: str) -> str | None:
    """The normalized code of a section header, as scoring reads it (None: not one of the 20)."""
    return normalize_section(header)


def file_tag(path: Path, split: str) -> str:
    """The id tag of a file: its split for the main three, else :data:`FILE_TAGS` or the stem."""
    if path.name in SPLIT_FILES:
        return SPLIT_FILES[path.name]
    if path.name in FILE_TAGS:
        return FILE_TAGS[path.name]
    return re.sub(r"[^a-z0-9_]+", "_", path.stem.lower()).strip("_") or split


def _clean(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def load_mtsdialog(
    path_or_dir: str | Path, split: str | None = None, encoding: str | None = None
) -> list[dict[str, Any]]:
    """Load MTS-Dialog items from one CSV file or from the release directory.

    A directory loads the three released files (train, val, test, in that order) or,
    with ``split``, only that split's file. A single file takes its split from
    ``split`` or else from its released file name. ``encoding``: the files' text
    encoding when not UTF-8 (e.g. ``cp1252``).
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
            items.extend(_load_file(f, s, encoding))
        return items
    if not path.exists():
        raise InputError("file not found", file=path)
    if split is None:
        split = SPLIT_FILES.get(path.name)
        if split is None:
            raise InputError(
                "cannot tell the split from the file name; pass --split (train, val or test) "
                "or set datasets.<name>.split_of_file in the config",
                file=path,
                field="split",
            )
    if split not in SPLITS:
        raise InputError(
            f"unknown split {split!r} (expected one of {', '.join(SPLITS)})",
            file=path,
            field="split",
        )
    return _load_file(path, split, encoding)


def _load_file(path: Path, split: str, encoding: str | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    tag = file_tag(path, split)
    with io.StringIO(read_text(path, encoding), newline="") as fh:
        reader = csv.DictReader(fh, strict=True)
        header = reader.fieldnames or []
        for col in COLUMNS:
            if col not in header:
                raise InputError(
                    f"missing column (found: {', '.join(header) or 'no header'})",
                    file=path,
                    field=col,
                )
        last_line = reader.line_num  # the header's last line
        try:
            for row_no, row in enumerate(reader, 1):
                items.append(_row_to_item(row, row_no, split, tag, path, seen))
                last_line = reader.line_num
        except csv.Error as err:
            after = f", after item {items[-1]['meta']['source_id']}" if items else ""
            raise InputError(
                f"malformed CSV in the record starting on line {last_line + 1}{after} ({err}); "
                "look for an unterminated or stray quote there",
                file=path,
                item=f"data row {len(items) + 1}",
            ) from None
    return items


def _swallowed_row(text: str) -> str | None:
    """The ID of a data row swallowed into ``text`` by an unterminated quote, if any."""
    for m in _ROW_START.finditer(text):
        if normalize_section(m.group(2)) is not None:
            return m.group(1)
    return None


def _row_to_item(
    row: dict[str, Any], row_no: int, split: str, tag: str, path: Path, seen: dict[str, int]
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
        swallowed = _swallowed_row(value) if col != "section_header" else None
        if swallowed is not None:
            raise InputError(
                f"holds a line that starts like data row {swallowed!r} (an unterminated quote "
                "swallowed the rows after it); close the quote in the CSV",
                file=path,
                item=rid,
                field=col,
            )
        value = _clean(value)
        if not value:
            raise InputError("empty", file=path, item=rid, field=col)
        values[col] = value
    code = normalize_header(values["section_header"])
    if code is None:
        raise InputError(
            f"unknown section header {values['section_header']!r} (expected one of the 20 "
            "MTS-Dialog codes, e.g. GENHX, FAM/SOCHX)",
            file=path,
            item=rid,
            field="section_header",
        )
    return make_item(
        id=f"{DATASET}-{tag}-{rid}",
        dataset=DATASET,
        task="section_summary",
        domain=code,
        q_type="section_summary",
        question=values["dialogue"],
        answer=f"{code.upper()}#{values['section_text']}",
        meta={
            "split": split,
            "source_file": path.name,
            "source_id": rid,
            "row": row_no,
            "section_header": code,
            "section_text": values["section_text"],
        },
    )
