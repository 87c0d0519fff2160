"""Loader for AI Hub dataset 71875, "필수의료 의학지식 데이터" (label JSON files).

Each label record has ``qa_id``, ``domain`` (department code), ``q_type``
(1 객관식, 2 단답형, 3 서술형), ``question`` and ``answer``. Multiple-choice
questions carry their numbered options in the question text ("…\\n1) …\\n5) …")
and their answer reads like "3) 아달리무맙".

:func:`load_aihub` accepts a download as it comes (``TL_*.zip`` / ``VL_*.zip``
under ``Training`` / ``Validation`` label folders) or already extracted folders of
JSON files, at any depth. It is lenient about the container (one record per
file, a JSON list of records, or ``{"data": [...]}``) and strict about the
fields: any problem raises :class:`~kmedqa.errors.InputError` naming the file
(``zip/member`` inside an archive), the item and the field.

One file on purpose, a little over the usual size: every quirk of AI Hub's label format
(options inline or one a line, circled or numbered; NFD folder names; cp949 member names;
source parts beside the labels) is read here, in one place.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kmedqa.errors import InputError
from kmedqa.io import decode_text
from kmedqa.items import make_item

DATASET = "aihub71875"

# Department codes of the annotation guide; the essential-medicine study uses 14–17.
DOMAIN_NAMES: dict[int, str] = {
    1: "외과",
    2: "예방의학",
    3: "정신건강의학과",
    4: "신경과/신경외과",
    5: "피부과",
    6: "안과",
    7: "이비인후과",
    8: "비뇨의학과",
    9: "방사선종양학과",
    10: "병리과",
    11: "마취통증의학과",
    12: "의료법규",
    13: "기타",
    14: "산부인과",
    15: "소아청소년과",
    16: "응급의학과",
    17: "내과",
}
Q_TYPE_NAMES: dict[int, str] = {1: "객관식", 2: "단답형", 3: "서술형"}
TASK_OF_Q_TYPE: dict[int, str] = {1: "mcq", 2: "short", 3: "descriptive"}
FIELDS = ("qa_id", "domain", "q_type", "question", "answer")

_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩"
# "3)", "(3)", "3.", "3번", "③" at the start of an option line
_OPTION_LINE = re.compile(
    rf"^\s*(?:\(?(\d{{1,2}})\s*(?:\)|\.(?!\d)|번)|([{_CIRCLED}]))\s*(.*?)\s*$"
)
_OPTION_INLINE = re.compile(rf"(?:(?<=\s)|^)(?:\(?(\d{{1,2}})\)|([{_CIRCLED}]))\s*")
_ANSWER = re.compile(
    rf"^\s*(?:정답\s*[:：]?\s*)?(?:\(?(\d{{1,2}})\s*(?:\)|\.(?!\d)|번|$)|([{_CIRCLED}]))\s*(.*)$",
    re.S,
)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", list: "list", dict: "object"}.get(
        type(value), type(value).__name__
    )


# --------------------------------------------------------------------------- option / answer parsing


def _marker_number(num: str | None, circled: str | None) -> int:
    return int(num) if num else _CIRCLED.index(circled) + 1


def parse_options(question: str) -> tuple[str, list[str]] | None:
    """Split an MCQ question into (stem, options); ``None`` when no "1) … 2) …" run is found.

    Options are the last run of markers numbered 1, 2, 3, … (one per line, or
    inline as in "…? 1) A 2) B"); lines after an option line that carry no
    marker continue that option.
    """
    lines = question.splitlines()
    best: tuple[int, list[str]] | None = None
    run: list[str] | None = None
    start = 0
    for i, line in enumerate(lines):
        m = _OPTION_LINE.match(line)
        if m:
            n = _marker_number(m.group(1), m.group(2))
            if n == 1:
                run, start = [m.group(3)], i
            elif run is not None and n == len(run) + 1:
                run.append(m.group(3))
            else:
                run = None
        elif run is not None and line.strip():
            run[-1] = f"{run[-1]} {line.strip()}".strip()
        if run is not None and len(run) >= 2:
            best = (start, list(run))
    if best is not None and all(o.strip() for o in best[1]):
        stem = "\n".join(lines[: best[0]]).strip()
        return stem, [o.strip() for o in best[1]]
    return _parse_inline(question)


def _parse_inline(question: str) -> tuple[str, list[str]] | None:
    marks = [
        (m.start(), m.end(), _marker_number(m.group(1), m.group(2)))
        for m in _OPTION_INLINE.finditer(question)
    ]
    for k, (start, _end, n) in enumerate(marks):
        if n != 1:
            continue
        chosen = [marks[k]]
        for mark in marks[k + 1 :]:
            if mark[2] == len(chosen) + 1:
                chosen.append(mark)
        if len(chosen) < 2:
            continue
        opts = []
        for j, (_s, e, _n) in enumerate(chosen):
            stop = chosen[j + 1][0] if j + 1 < len(chosen) else len(question)
            opts.append(question[e:stop].strip())
        if all(opts):
            return question[:start].strip(), opts
    return None


def _norm(text: str) -> str:
    return " ".join(text.split()).strip(" .").casefold()


def parse_answer_index(answer: str, options: list[str]) -> int:
    """0-based index of the option an MCQ answer names ("3) 아달리무맙", "3번", "③").

    Raises ``ValueError`` with a message for the user when the number is missing
    or out of range, or when the answer's text contradicts the numbered option.
    """
    m = _ANSWER.match(answer)
    if m is None:
        matches = [i for i, o in enumerate(options) if _norm(o) == _norm(answer)]
        if len(matches) == 1:
            return matches[0]
        raise ValueError(f"cannot find the option number in {answer!r} (expected e.g. '3) …')")
    n = _marker_number(m.group(1), m.group(2))
    if not 1 <= n <= len(options):
        raise ValueError(f"names option {n} but the question has {len(options)} options")
    text = m.group(3).strip()
    if text:
        a, o = _norm(text), _norm(options[n - 1])
        if a != o and a not in o and o not in a:
            raise ValueError(f"answer text {text!r} does not match option {n} {options[n - 1]!r}")
    return n - 1


# --------------------------------------------------------------------------- record → item


def _code(raw: dict[str, Any], key: str, names: dict[int, str], where: dict[str, Any]) -> int:
    value = raw.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InputError("missing or empty", field=key, **where)
    if isinstance(value, bool):
        raise InputError(f"must be a code, got {_type_name(value)}", field=key, **where)
    if isinstance(value, int):
        code = value
    elif isinstance(value, float) and value.is_integer():
        code = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        code = int(value.strip())
    elif isinstance(value, str) and value.strip() in names.values():
        return next(c for c, n in names.items() if n == value.strip())
    else:
        raise InputError(f"must be a numeric code, got {value!r}", field=key, **where)
    if code not in names:
        known = ", ".join(f"{c} {n}" for c, n in names.items())
        raise InputError(f"unknown code {code} (known: {known})", field=key, **where)
    return code


def _text(raw: dict[str, Any], key: str, where: dict[str, Any]) -> str:
    if key not in raw:
        raise InputError("missing", field=key, **where)
    value = raw[key]
    if not isinstance(value, str):
        raise InputError(f"must be text, got {_type_name(value)}", field=key, **where)
    if not value.strip():
        raise InputError("empty", field=key, **where)
    return value.strip()


def _qa_id(raw: dict[str, Any], file: str) -> int:
    value = raw.get("qa_id")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InputError("missing or empty", file=file, field="qa_id")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise InputError(f"must be an integer, got {value!r}", file=file, field="qa_id")


def record_to_item(raw: Any, *, file: str, source_split: str) -> dict[str, Any]:
    """One raw label record as a normalized item (see :mod:`kmedqa.items`)."""
    if not isinstance(raw, dict):
        raise InputError(f"a record must be a JSON object, got {_type_name(raw)}", file=file)
    qa_id = _qa_id(raw, file)
    item_id = f"aihub-{qa_id}"
    where = {"file": file, "item": item_id}
    domain = _code(raw, "domain", DOMAIN_NAMES, where)
    q_type = _code(raw, "q_type", Q_TYPE_NAMES, where)
    question = _text(raw, "question", where)
    answer = _text(raw, "answer", where)
    options = answer_index = None
    if q_type == 1:
        parsed = parse_options(question)
        if parsed is None:
            raise InputError(
                "cannot parse the numbered options ('1) …' '2) …') of a multiple-choice question",
                field="question",
                **where,
            )
        options = parsed[1]
        try:
            answer_index = parse_answer_index(answer, options)
        except ValueError as err:
            raise InputError(str(err), field="answer", **where) from None
    meta: dict[str, Any] = {"source_split": source_split, "source_file": file, "qa_id": qa_id}
    if raw.get("illustrative") is True:
        meta["illustrative"] = True
    return make_item(
        id=item_id,
        dataset=DATASET,
        task=TASK_OF_Q_TYPE[q_type],
        domain=DOMAIN_NAMES[domain],
        q_type=Q_TYPE_NAMES[q_type],
        question=question,
        options=options,
        answer=answer,
        answer_index=answer_index,
        meta=meta,
    )


def parse_records(data: bytes, *, file: str, encoding: str | None = None) -> list[Any]:
    """The records of one label file: a record, a list of records, or ``{"data": [...]}``.

    Text that is not UTF-8 (or ``encoding``) stops with a hint at its likely encoding."""
    text = decode_text(data, file=file, encoding=encoding)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"not valid JSON ({err.msg}, line {err.lineno})", file=file) from None
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict):
        if "qa_id" not in obj and isinstance(obj.get("data"), list):
            return obj["data"]
        return [obj]
    raise InputError(f"expected a JSON object or list, got {_type_name(obj)}", file=file)


# --------------------------------------------------------------------------- discovery


def _nfc(name: str) -> str:
    """Names as NFC: a tree extracted on macOS spells 원천데이터 decomposed (NFD)."""
    return unicodedata.normalize("NFC", name)


def _split_of(path: Path) -> str:
    """Training / Validation from folder names or TL_/VL_ prefixes in ``path``; else "unknown"."""
    for part in reversed(path.parts):
        low = _nfc(part).lower()
        if low.startswith(("tl_", "tl.")) or low in ("training", "train"):
            return "Training"
        if low.startswith(("vl_", "vl.")) or low in ("validation", "val", "valid"):
            return "Validation"
    return "unknown"


def _is_source_data(name: str) -> bool:
    """Raw-source parts of the download (원천데이터, TS_/VS_ zips) hold no labels."""
    name = _nfc(name)
    return "원천" in name or name.upper().startswith(("TS_", "VS_"))


def _discover(root: Path) -> list[Path]:
    """Label zips and JSON files under ``root``, in a stable order.

    An extracted folder next to its own zip (``TL_내과/`` beside ``TL_내과.zip``)
    is skipped so the same records are not read twice.
    """
    if root.is_file():
        return [root]
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        zip_stems = {_nfc(Path(f).stem) for f in filenames if f.lower().endswith(".zip")}
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".") and not _is_source_data(d) and _nfc(d) not in zip_stems
        )
        for name in sorted(filenames):
            low = name.lower()
            if name.startswith(".") or _is_source_data(name):
                continue
            if low.endswith((".zip", ".json")):
                found.append(here / name)
    return found


def _iter_zip(path: Path) -> Iterator[tuple[str, bytes]]:
    """(member name, bytes) of the JSON members of a zip, sorted by name."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise InputError(f"not a readable zip archive ({err})", file=path) from None
    n_json = 0
    with zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            name = info.filename
            if info.is_dir() or not name.lower().endswith(".json") or "__MACOSX" in name:
                continue
            if Path(name).name.startswith("."):
                continue
            try:
                data = zf.read(info)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as err:
                raise InputError(
                    f"corrupt zip member ({err})", file=f"{path}/{_display_name(info)}"
                ) from None
            n_json += 1
            yield _display_name(info), data
    if n_json == 0:  # a whole department would go missing from the study
        raise InputError(
            "zip holds no JSON label files (an empty or incomplete download?); "
            "download it again, or move it out of the data folder",
            file=path,
        )


def _display_name(info: zipfile.ZipInfo) -> str:
    """Member name; Korean names zipped on Windows (cp949, no UTF-8 flag) are decoded back."""
    if info.flag_bits & 0x800:
        return _nfc(info.filename)
    try:
        return _nfc(info.filename.encode("cp437").decode("cp949"))
    except (UnicodeEncodeError, UnicodeDecodeError):
        return _nfc(info.filename)


def _iter_label_files(root: Path) -> Iterator[tuple[str, str, bytes, str]]:
    """(path for messages, ``meta.source_file``, bytes, source split) of every label file."""
    for path in _discover(root):
        rel = Path(path.name) if root.is_file() else path.relative_to(root)
        split = _split_of(rel)
        if split == "unknown":
            split = _split_of(path.resolve())
        if path.suffix.lower() == ".zip":
            for member, data in _iter_zip(path):
                yield f"{path}/{member}", f"{_nfc(path.name)}/{member}", data, split
        else:
            yield str(path), _nfc(rel.as_posix()), path.read_bytes(), split


def load_aihub(root: str | Path, encoding: str | None = None) -> list[dict[str, Any]]:
    """Load AI Hub 71875 label data under ``root`` as normalized items sorted by id.

    ``root`` may be the download root, any folder inside it, a single label zip
    or a single JSON file. Items get ``meta.source_split`` ("Training",
    "Validation", or "unknown" when the path names neither), ``meta.source_file``
    (``<zip name>/<member>``, or the path relative to ``root``) and ``meta.qa_id``.
    """
    root = Path(root)
    if not root.exists():
        raise InputError("not found", file=root)
    items: dict[str, dict[str, Any]] = {}
    for shown, source_file, data, split in _iter_label_files(root):
        for raw in parse_records(data, file=shown, encoding=encoding):
            item = record_to_item(raw, file=shown, source_split=split)
            item["meta"]["source_file"] = source_file
            if item["id"] in items:
                first = items[item["id"]]["meta"]["source_file"]
                raise InputError(
                    f"duplicate qa_id (first seen in {first})",
                    file=shown,
                    item=item["id"],
                    field="qa_id",
                )
            items[item["id"]] = item
    if not items:
        raise InputError("no AI Hub label records (TL_*.zip, VL_*.zip or *.json) found", file=root)
    return [items[k] for k in sorted(items)]
