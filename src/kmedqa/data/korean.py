"""Korean particles: the form (은/는, 이/가, 을/를, 과/와, 으로/로) that follows a word.

The demo data (:mod:`kmedqa.data.demo_records`) fills its question templates with
:func:`fill`, so that a particle agrees with the word it follows, as a Korean writer's would.
"""

from __future__ import annotations

import re

_MARKER = re.compile(r"\{(s|o|note)(?::(은|는|이|가|을|를|과|와|으로|로))?\}")
# each particle's two forms: after a final consonant, after a vowel
_FORMS = (("은", "는"), ("이", "가"), ("을", "를"), ("과", "와"), ("으로", "로"))
_PAIRS = {form: pair for pair in _FORMS for form in pair}
# final consonant (jongseong index) of how a trailing digit / Latin letter is read in Korean
_DIGIT_FINAL = {"0": 21, "1": 8, "2": 0, "3": 16, "4": 0, "5": 0, "6": 1, "7": 8, "8": 8, "9": 0}
_LATIN_FINAL = {"l": 8, "m": 16, "n": 4, "r": 8}
_RIEUL = 8


def _final_consonant(word: str) -> int:
    """Jongseong index of the last pronounced syllable (0 = none); a trailing "(…)" is skipped."""
    w = word.strip()
    while w.endswith(")") and "(" in w:
        w = w[: w.rfind("(")].rstrip()
    for ch in reversed(w):
        if "가" <= ch <= "힣":
            return (ord(ch) - 0xAC00) % 28
        if ch in _DIGIT_FINAL:
            return _DIGIT_FINAL[ch]
        if ch.isascii() and ch.isalpha():
            return _LATIN_FINAL.get(ch.lower(), 0)
    return 0


def particle(word: str, marker: str) -> str:
    """The form of a Korean particle (은/는, 이/가, 을/를, 과/와, 으로/로) that follows ``word``."""
    with_final, without = _PAIRS[marker]
    final = _final_consonant(word)
    if with_final == "으로":
        return without if final in (0, _RIEUL) else with_final
    return with_final if final else without


def fill(template: str, s: str, o: str, note: str | None = None) -> str:
    """Fill ``{s}``, ``{o}``, ``{note}`` and particle markers such as ``{s:은}``."""
    values = {"s": s, "o": o, "note": note or ""}

    def sub(m: re.Match[str]) -> str:
        word = values[m.group(1)]
        return word + (particle(word, m.group(2)) if m.group(2) else "")

    return " ".join(_MARKER.sub(sub, template).split())
