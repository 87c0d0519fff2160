"""MTS-Dialog section summaries: ``"<section code>#<summary>"``, e.g. ``"GENHX#The patient is…"``.

The clinical-notes study scores the section header (one of the 20 normalized MTS-Dialog
codes in :data:`SECTION_CODES`) for exact agreement, and the summary text by ROUGE.

Normalization is deliberately narrow: case, spaces and the separators ``_ - /`` are
ignored (``"FAM/SOCHX"``, ``"fam / sochx"``, ``"Past Medical HX"`` and
``"OTHER HISTORY"`` are all recognized), but no synonyms or singular/plural variants are
accepted (``"medication"`` is not ``medications``), so section accuracy is not inflated.
"""

from __future__ import annotations

import re

SECTION_CODES = (
    "fam/sochx",
    "genhx",
    "pastmedicalhx",
    "cc",
    "pastsurgical",
    "allergy",
    "ros",
    "medications",
    "assessment",
    "exam",
    "diagnosis",
    "disposition",
    "plan",
    "edcourse",
    "immunizations",
    "imaging",
    "gynhx",
    "procedures",
    "other_history",
    "labs",
)

_SEPARATORS = re.compile(r"[\s_\-/]+")
_LOOKUP = {_SEPARATORS.sub("", code): code for code in SECTION_CODES}
# Markdown emphasis or quotes a model may wrap around the code: "**GENHX**#…".
_WRAPPERS = "*`'\"[]()<>: \t\r\n"


def _key(code: str) -> str:
    return _SEPARATORS.sub("", code.strip(_WRAPPERS).lower())


def normalize_section(code: str | None) -> str | None:
    """The normalized section code for ``code``, or None if it is not one of the 20."""
    if not isinstance(code, str):
        return None
    return _LOOKUP.get(_key(code))


def parse_section_output(output: str) -> tuple[str | None, str]:
    """Split ``"<code>#<summary>"`` into (normalized code or None, summary text).

    The text before the first ``#`` is the code; the rest, stripped, is the summary, also
    when the code is not recognized (``(None, summary)``). Without any ``#``, a leading
    recognized code followed by ``:`` or a line break is accepted as the code
    (``"GENHX: The patient…"``); otherwise the code is None and the whole (stripped)
    output is the summary.
    """
    text = (output or "").strip()
    if "#" in text:
        head, tail = text.split("#", 1)
        return normalize_section(head), tail.strip()
    m = re.match(r"\s*([^\n:]{1,40}?)\s*(?::|\n)\s*(.*)\Z", text, flags=re.S)
    if m:
        code = normalize_section(m.group(1))
        if code is not None:
            return code, m.group(2).strip()
    return None, text


def reference_section(answer: str, meta: dict | None = None) -> tuple[str | None, str]:
    """(code, summary) of a reference: ``meta["section_header"]`` if present, else ``answer``.

    When ``meta.section_header`` names the code, the summary is ``meta.section_text`` if
    present (the MTS-Dialog loader writes both), else ``answer`` with a recognized
    ``"CODE#"`` prefix removed.
    """
    meta = meta or {}
    header = meta.get("section_header")
    if header is not None:
        code = normalize_section(str(header))
        if isinstance(meta.get("section_text"), str) and meta["section_text"].strip():
            return code, meta["section_text"].strip()
        summary = answer.strip()
        if "#" in summary:
            head, tail = summary.split("#", 1)
            if normalize_section(head) is not None:
                summary = tail.strip()
        return code, summary
    return parse_section_output(answer)
