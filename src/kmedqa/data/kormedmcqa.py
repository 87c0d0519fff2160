"""Loader for KorMedMCQA (Korean health-professional licensing exam MCQs).

The hub dataset ``sean0042/KorMedMCQA`` has one config per exam (doctor, nurse,
pharm, dentist) and the splits train / dev / test / fewshot. Rows have
``subject, year, period, q_number, question, A, B, C, D, E, answer`` (1–5) and
``cot``. :func:`load_kormedmcqa` reads a local file (.parquet, .csv, .jsonl,
.json), a directory of such files (``doctor-test.csv``, ``doctor/test-*.parquet``,
…), or, given the literal hub id, the hub itself through ``datasets``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kmedqa.errors import ConfigError, InputError
from kmedqa.io import iter_jsonl, read_text
from kmedqa.items import OPTION_LETTERS, make_item

log = logging.getLogger(__name__)

DATASET = "kormedmcqa"
HUB_ID = "sean0042/KorMedMCQA"
EXAMS = ("doctor", "nurse", "pharm", "dentist")
SPLITS = ("train", "dev", "test", "fewshot")
SPLIT_ALIASES = {"validation": "dev", "valid": "dev", "val": "dev"}
LETTERS = OPTION_LETTERS[:5]  # KorMedMCQA's option columns A-E (E may be empty)
# The raw layout (the hub's columns; the demo writes it too) and what a row must have.
COLUMNS = ("subject", "year", "period", "q_number", "question", *LETTERS, "answer", "cot")
REQUIRED = ("year", "period", "q_number", "question", *LETTERS[:4], "answer")
SUFFIXES = (".parquet", ".csv", ".jsonl", ".json")
DEFAULT_SPLIT = "test"  # what a file with no split in its name is taken to be

_SPLIT_IN_NAME = re.compile(
    r"(?:^|[^a-z])(train|dev|test|fewshot|validation|valid|val)(?:[^a-z]|$)"
)


def normalize_split(split: str | None) -> str | None:
    if split is None:
        return None
    s = SPLIT_ALIASES.get(split.lower(), split.lower())
    if s not in SPLITS:
        raise ConfigError(
            f"unknown KorMedMCQA split {split!r} (expected one of {', '.join(SPLITS)})"
        )
    return s


def split_from_name(path: Path) -> str | None:
    """The split a file's name or folder names (``doctor-test.csv``, ``test-0000.parquet``)."""
    for part in reversed(path.parts):
        m = _SPLIT_IN_NAME.search(Path(part).stem.lower())
        if m:
            return SPLIT_ALIASES.get(m.group(1), m.group(1))
    return None


# --------------------------------------------------------------------------- readers


def _read_rows(path: Path, encoding: str | None = None) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        text = read_text(path, encoding)
        try:
            with io.StringIO(text, newline="") as fh:
                reader = csv.DictReader(fh, strict=True)
                if reader.fieldnames is None:
                    raise InputError("empty CSV file (no header)", file=path)
                return [dict(r) for r in reader]
        except csv.Error as err:
            raise InputError(f"not valid CSV ({err})", file=path) from None
    if suffix == ".jsonl":
        return list(iter_jsonl(path, encoding))
    if suffix == ".json":
        try:
            obj = json.loads(read_text(path, encoding))
        except json.JSONDecodeError as err:
            raise InputError(f"not valid JSON ({err})", file=path) from None
        if isinstance(obj, dict) and isinstance(obj.get("data"), list):
            obj = obj["data"]
        if not isinstance(obj, list) or not all(isinstance(r, dict) for r in obj):
            raise InputError('expected a JSON list of row objects (or {"data": [...]})', file=path)
        return obj
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist()
        except Exception as err:  # pyarrow raises several types for a damaged file
            raise InputError(
                f"not a readable parquet file ({type(err).__name__}: {err})", file=path
            ) from None
    raise InputError(f"unsupported file type (expected one of {', '.join(SUFFIXES)})", file=path)


def _files_for_exam(directory: Path, exam: str) -> list[Path]:
    """Data files under ``directory`` that belong to ``exam`` (by file name or folder name)."""
    found = []
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in SUFFIXES or path.name.startswith("."):
            continue
        rel = path.relative_to(directory)
        parts = [p.lower() for p in rel.parts[:-1]]
        if path.stem.lower().startswith(exam) or exam in parts:
            found.append(path)
    return found


def _hub_rows(
    exam: str, split: str | None
) -> Iterator[tuple[str, str, int, dict[str, Any]]]:  # pragma: no cover
    """Rows from the Hugging Face hub (needs network access; not exercised by the tests)."""
    try:
        from datasets import load_dataset
    except ImportError as err:
        raise ConfigError(
            f"reading {HUB_ID} from the hub needs the 'datasets' package ({err})"
        ) from None
    ds = load_dataset(HUB_ID, exam)
    names = (
        [split]
        if split is not None
        else [s for s in SPLITS if s in ds] + sorted(set(ds) - set(SPLITS))
    )
    for name in names:
        if name not in ds:
            raise ConfigError(f"{HUB_ID} ({exam}) has no split {name!r} (has {', '.join(ds)})")
        label = f"{HUB_ID}/{exam}/{name}"
        for n, row in enumerate(ds[name], 1):
            yield label, name, n, dict(row)


def _local_rows(
    source: Path, exam: str, split: str | None, encoding: str | None = None
) -> Iterator[tuple[str, str, int, dict[str, Any]]]:
    if not source.exists():
        raise InputError("not found", file=source)
    files = _files_for_exam(source, exam) if source.is_dir() else [source]
    if not files:
        raise InputError(f"no {exam} files ({', '.join(SUFFIXES)}) found", file=source)
    for path in files:
        file_split = split_from_name(
            path.relative_to(source) if source.is_dir() else Path(path.name)
        )
        rows = _read_rows(path, encoding)
        for n, row in enumerate(rows, 1):
            value = row.get("split")
            row_split = value.strip().lower() if isinstance(value, str) and value.strip() else None
            s = (
                SPLIT_ALIASES.get(row_split, row_split)
                if row_split
                else file_split or DEFAULT_SPLIT
            )
            if split is not None and s != split:
                continue
            yield str(path), s, n, row


# --------------------------------------------------------------------------- row → item


def _int(row: dict[str, Any], key: str, where: dict[str, Any]) -> int:
    value = row.get(key)
    if isinstance(value, bool):
        raise InputError(f"must be an integer, got {value!r}", field=key, **where)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(?:\.0+)?\s*", value):
        return int(float(value))
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InputError("missing or empty", field=key, **where)
    raise InputError(f"must be an integer, got {value!r}", field=key, **where)


def _text(row: dict[str, Any], key: str, where: dict[str, Any], what: str = "text") -> str:
    value = row.get(key)
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        raise InputError(f"empty {what}", field=key, **where)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)  # a numeric option such as "5" read from CSV or parquet
    if not isinstance(value, str):
        raise InputError(f"must be text, got {type(value).__name__}", field=key, **where)
    if not value.strip():
        raise InputError(f"empty {what}", field=key, **where)
    return value.strip()


def _answer(row: dict[str, Any], n_options: int, where: dict[str, Any]) -> int:
    value = row.get("answer")
    if isinstance(value, str) and value.strip().upper() in tuple(LETTERS):
        n = LETTERS.index(value.strip().upper()) + 1
    else:
        try:
            n = _int(row, "answer", where)
        except InputError:
            raise InputError(
                f"must be 1-5 or A-E, got {value!r}", field="answer", **where
            ) from None
    if not 1 <= n <= 5:
        raise InputError(f"must be 1-5, got {n}", field="answer", **where)
    if n > n_options:
        raise InputError(
            f"answer {n} names option {LETTERS[n - 1]}, which is empty", field="answer", **where
        )
    return n - 1


def row_to_item(
    row: dict[str, Any], *, exam: str, split: str, file: str, row_number: int
) -> dict[str, Any]:
    """One KorMedMCQA row as a normalized item; ids are made unique by :func:`load_kormedmcqa`."""
    where: dict[str, Any] = {"file": file, "item": f"row {row_number}"}
    for key in REQUIRED:
        if key not in row:
            raise InputError("missing column", field=key, **where)
    year, period, q_number = (_int(row, k, where) for k in ("year", "period", "q_number"))
    item_id = f"kormedmcqa-{exam}-{year}-{period}-{q_number}"
    where["item"] = f"{item_id} (row {row_number})"
    question = _text(row, "question", where)
    options = [_text(row, letter, where, "option") for letter in "ABCD"]
    e = row.get("E")
    if e is not None and not (isinstance(e, float) and e != e) and str(e).strip():
        options.append(_text(row, "E", where, "option"))
    answer_index = _answer(row, len(options), where)
    subject = row.get("subject")
    meta = {
        "subject": subject if isinstance(subject, str) and subject.strip() else exam,
        "year": year,
        "period": period,
        "q_number": q_number,
        "split": split,
        "source_file": Path(file).name if not file.startswith(HUB_ID) else file,
    }
    return make_item(
        id=item_id,
        dataset=DATASET,
        task="mcq",
        domain=exam,
        q_type="객관식",
        question=question,
        options=options,
        answer=f"{LETTERS[answer_index]}. {options[answer_index]}",
        answer_index=answer_index,
        meta=meta,
    )


def load_kormedmcqa(
    source: str | Path,
    exam: str = "doctor",
    split: str | None = None,
    encoding: str | None = None,
) -> list[dict[str, Any]]:
    """Load one exam of KorMedMCQA as normalized items sorted by id.

    ``source`` is a local file, a directory (files of ``exam`` picked by name),
    or :data:`HUB_ID` (downloads through ``datasets.load_dataset``). ``split``
    keeps only that split (train, dev, test, fewshot); rows whose split cannot be
    told from the file name count as "test". A row whose id
    ``kormedmcqa-{exam}-{year}-{period}-{q_number}`` was already used gets a
    suffix ``-2``, ``-3``, … (and ``meta.id_suffix``), with a warning naming the file,
    the rows and the q_number. ``encoding``: the local files' text encoding if not UTF-8.
    """
    if exam not in EXAMS:
        raise ConfigError(f"unknown KorMedMCQA exam {exam!r} (expected one of {', '.join(EXAMS)})")
    split = normalize_split(split)
    rows = (
        _hub_rows(exam, split)
        if str(source) == HUB_ID
        else _local_rows(Path(source), exam, split, encoding)
    )
    items: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    first: dict[str, int] = {}  # duplicates seen per base id (for the warnings)
    rows_of: dict[str, int] = {}  # row of the first use of a base id
    for file, row_split, row_number, row in rows:
        if "exam" in row and isinstance(row["exam"], str) and row["exam"] and row["exam"] != exam:
            continue
        item = row_to_item(row, exam=exam, split=row_split, file=file, row_number=row_number)
        base = item["id"]
        counts[base] = counts.get(base, 0) + 1
        if counts[base] > 1:
            item["id"] = f"{base}-{counts[base]}"
            item["meta"]["id_suffix"] = counts[base]
            first[base] = first.get(base, 0) + 1
            if first[base] <= 5:
                log.warning(
                    "%s: row %d: field 'q_number': duplicate of %s (row %d); kept as %s",
                    file,
                    row_number,
                    base,
                    rows_of[base],
                    item["id"],
                )
        else:
            rows_of[base] = row_number
        items[item["id"]] = item
    if sum(first.values()) > 5:
        log.warning("%d duplicate q_numbers in all (ids suffixed -2, -3, …)", sum(first.values()))
    if not items:
        raise InputError(f"no {exam} rows" + (f" in split {split!r}" if split else ""), file=source)
    return [items[k] for k in sorted(items)]
