"""Small, dependable file helpers: JSON lines, atomic writes, crash-safe appends,
text decoding with encoding hints, content hashes.

- :func:`atomic_write_text`: the file appears complete or not at all, with the mode a
  plain ``open()`` would give (it honours the umask; ``mkstemp`` alone makes 0600).
- :func:`append_jsonl` / :func:`read_jsonl_tail_tolerant`: the resumable caches
  (generation, hosted backends). A row counts once its newline is on disk; a torn last
  line (a kill inside a write) is dropped with a warning, and the next append cuts it
  off first, so it is recomputed and never merged with the next row.
- :func:`decode_text`: UTF-8 (BOM or not), UTF-16 with a BOM, or the declared
  ``encoding``; anything else stops with a hint at what the bytes look like (CP949,
  Windows-1252, UTF-16 without BOM). NUL bytes are stripped with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from kmedqa.errors import InputError

log = logging.getLogger(__name__)

_EUC_KR_PAIR = re.compile(rb"[\xa1-\xfe][\xa1-\xfe]")
_HIGH = re.compile(rb"[\x80-\xff]")


def _guess_encoding(data: bytes) -> str | None:
    """What non-UTF-8 bytes most likely are: ``cp949``, ``cp1252`` or ``utf-16`` (or None)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or data.count(b"\x00") > len(data) // 4:
        return "utf-16"
    high = len(_HIGH.findall(data))
    if not high:
        return None
    paired = 2 * len(_EUC_KR_PAIR.findall(data))
    if paired >= 0.8 * high:
        try:
            data.decode("cp949")
            return "cp949"
        except UnicodeDecodeError:
            pass
    try:
        data.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return None


def encoding_hint(data: bytes) -> str:
    guess = _guess_encoding(data)
    if guess is None:
        return "re-save it as UTF-8"
    name = {"cp949": "CP949", "cp1252": "Windows-1252 (cp1252)", "utf-16": "UTF-16"}[guess]
    return (
        f"this looks like {name}: re-save it as UTF-8, or pass --encoding {guess} "
        f"(config: datasets.<name>.encoding: {guess})"
    )


def decode_text(data: bytes, *, file: str | Path, encoding: str | None = None) -> str:
    """``data`` as text: the declared ``encoding``, else UTF-8 (BOM optional) or BOM'ed UTF-16.

    Undecodable bytes stop with one line naming the file, the line and a hint at the
    likely encoding; NUL bytes (never part of text) are stripped with a warning."""
    if encoding is not None:
        try:
            text = data.decode(encoding)
        except LookupError:
            raise InputError(
                f"unknown encoding {encoding!r}", file=file, field="encoding"
            ) from None
        except UnicodeDecodeError as err:
            line = data[: err.start].count(b"\n") + 1
            raise InputError(
                f"line {line}: not valid {encoding} text (byte {err.start}); {encoding_hint(data)}",
                file=file,
                field="encoding",
            ) from None
        text = text.removeprefix("\ufeff")
    elif data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        text = data.decode("utf-16", errors="strict").removeprefix("\ufeff")
    else:
        if data.count(b"\x00") > len(data) // 4:
            raise InputError(f"not UTF-8 text; {encoding_hint(data)}", file=file, field="encoding")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            line = data[: err.start].count(b"\n") + 1
            raise InputError(
                f"line {line}: not UTF-8 text (byte {err.start}: {data[err.start : err.start + 1]!r}); "
                f"{encoding_hint(data)}",
                file=file,
                field="encoding",
            ) from None
    if "\x00" in text:
        log.warning("%s: stripped %d NUL byte(s) from the text", file, text.count("\x00"))
        text = text.replace("\x00", "")
    return text


def read_text(path: str | Path, encoding: str | None = None) -> str:
    """A text file through :func:`decode_text` (a missing file names itself)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("folder, not a file" if path.is_dir() else "file not found", file=path)
    return decode_text(path.read_bytes(), file=path, encoding=encoding)


def read_jsonl(path: str | Path, encoding: str | None = None) -> list[dict[str, Any]]:
    return list(iter_jsonl(path, encoding))


def iter_jsonl(path: str | Path, encoding: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield one dict per non-empty line; a broken line names file and line number."""
    path = Path(path)
    for lineno, line in enumerate(read_text(path, encoding).split("\n"), 1):
        if line.strip():
            yield json_object_line(line, lineno, path)


def json_object_line(line: str, lineno: int, path: str | Path) -> dict[str, Any]:
    """One JSON-lines line as a dict; anything else names the file and the line."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise InputError(f"line {lineno} is not valid JSON ({err.msg})", file=path) from None
    if not isinstance(obj, dict):
        raise InputError(f"line {lineno} is not a JSON object", file=path)
    return obj


def dumps(obj: Any) -> str:
    """Canonical one-line JSON (UTF-8, sorted keys) so reruns are byte-identical."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write all rows atomically: the file appears complete or not at all."""
    atomic_write_text(path, "".join(dumps(r) + "\n" for r in rows))


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise InputError(f"not valid JSON ({err.msg}, line {err.lineno})", file=path) from None


def check_output_file(path: str | Path, option: str = "-o/--output") -> None:
    """Stop before any work when an output path is a folder (one line, not IsADirectoryError)."""
    if Path(path).is_dir():
        raise InputError(
            f"is a folder; {option} needs a file name (e.g. {Path(path) / 'out.jsonl'})",
            file=path,
            field=option,
        )


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file + rename, with the umask's file mode."""
    path = Path(path)
    check_output_file(path, "output")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600: shared results stay readable
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_tree(path: str | Path) -> str:
    """Hash of a directory's files (relative names and contents), order-independent."""
    root = Path(path)
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(root)).encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- resumable caches


def _cut_torn_tail(fh, path: Path) -> None:
    """Truncate an append-mode binary file after its last newline (a torn last row)."""
    size = fh.seek(0, os.SEEK_END)
    if size == 0:
        return
    fh.seek(size - 1)
    if fh.read(1) == b"\n":
        return
    keep = size - 1
    block = 1 << 16
    while keep > 0:  # find the last newline, reading backwards
        start = max(0, keep - block)
        fh.seek(start)
        chunk = fh.read(keep - start)
        nl = chunk.rfind(b"\n")
        if nl >= 0:
            keep = start + nl + 1
            break
        keep = start
    log.warning(
        "%s: dropped a torn last line (%d bytes, cut by a kill during a write); it is recomputed",
        path,
        size - keep,
    )
    fh.truncate(keep)
    fh.seek(0, os.SEEK_END)


def append_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append ``rows`` as JSON lines and fsync: crash-safe for resumable caches.

    A torn last line left by an earlier kill is cut off first, so a new row never
    merges with it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(dumps(r) + "\n" for r in rows).encode("utf-8")
    with path.open("a+b") as fh:
        _cut_torn_tail(fh, path)
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl_tail_tolerant(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a resumable cache; never fatal.

    Only newline-terminated lines count: a torn last line (cut at any byte, inside a
    multi-byte character too) is dropped with a warning, and so is any other line that
    is not one UTF-8 JSON object (each is recomputed by the caller)."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    if tail:
        log.warning(
            "%s: ignoring a torn last line (%d bytes, cut by a kill during a write); "
            "it is recomputed",
            path,
            len(tail),
        )
    rows = []
    for lineno, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            row = None
        if not isinstance(row, dict):
            log.warning("%s: ignoring unreadable line %d; it is recomputed", path, lineno)
            continue
        rows.append(row)
    return rows
