"""Which script a model answers in: the share of letters that are Hangul, resp. Han.

Small models fine-tuned on Korean data drift into Chinese (or English); these two ratios
make that visible per item. Both are shares of the *letters* of the text (Unicode general
category ``L*``): digits, punctuation, symbols and spaces are not counted. A text without
any letter has no ratio (``None``), which summaries skip rather than count as 0.

- Hangul: syllables (U+AC00–D7A3), jamo (U+1100–11FF), compatibility jamo (U+3130–318F),
  jamo extended-A/B (U+A960–A97F, U+D7B0–D7FF) and halfwidth jamo (U+FFA0–FFDC).
- Han: CJK unified ideographs (U+4E00–9FFF), extension A (U+3400–4DBF), extensions B–F
  and I (U+20000–2EBEF), extensions G–H (U+30000–323AF), and CJK compatibility
  ideographs (U+F900–FAFF, U+2F800–2FA1F), which Korean Hanja input often produces.
"""

from __future__ import annotations

import unicodedata

HANGUL_RANGES = (
    (0xAC00, 0xD7A3),
    (0x1100, 0x11FF),
    (0x3130, 0x318F),
    (0xA960, 0xA97F),
    (0xD7B0, 0xD7FF),
    (0xFFA0, 0xFFDC),
)
HAN_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2EBEF),
    (0x30000, 0x323AF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def _in(cp: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= cp <= hi for lo, hi in ranges)


def script_counts(text: str) -> tuple[int, int, int]:
    """(letters, Hangul letters, Han letters) in ``text``."""
    letters = hangul = han = 0
    for ch in text:
        if not unicodedata.category(ch).startswith("L"):
            continue
        letters += 1
        cp = ord(ch)
        if _in(cp, HANGUL_RANGES):
            hangul += 1
        elif _in(cp, HAN_RANGES):
            han += 1
    return letters, hangul, han


def lang_ratios(text: str) -> dict[str, float | None]:
    """``{"lang_hangul_ratio": …, "lang_han_ratio": …}``; both None for a text without letters."""
    letters, hangul, han = script_counts(text or "")
    if letters == 0:
        return {"lang_hangul_ratio": None, "lang_han_ratio": None}
    return {"lang_hangul_ratio": hangul / letters, "lang_han_ratio": han / letters}


def hangul_ratio(text: str) -> float | None:
    return lang_ratios(text)["lang_hangul_ratio"]


def han_ratio(text: str) -> float | None:
    return lang_ratios(text)["lang_han_ratio"]
