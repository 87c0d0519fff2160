"""Which option a model chose: a strict reading, a lenient reading, and whether the format held.

:func:`extract_choice` returns a :class:`Choice` with 0-based ``strict_choice`` and
``lenient_choice`` (None: no decision) and ``format_ok``. Scoring turns them into
``mcq_strict = strict_choice == answer_index`` and ``mcq_lenient = lenient_choice ==
answer_index``. Every pattern lives in :data:`EXTRACTION` below.

``answer_format: number`` (AI Hub 71875, prompt format ``aihub``; answers read "3) 아달리무맙")
    *strict*: after removing leading chat artifacts (whitespace, special tokens such as
    ``<|im_start|>``, a role label such as ``assistant``, markdown emphasis), the output
    begins with ``N)`` with N in 1..len(options); the text after it is not checked (the
    number decides, as in the study's format). ``format_ok`` is True exactly when this form
    was used, right or wrong.

``answer_format: letter`` (KorMedMCQA, prompt format ``kormedmcqa``, prompt ends "정답：")
    *strict* reproduces lm-evaluation-harness ``kormedmcqa`` **version 3.0** (subtask
    template ``lm_eval/tasks/kormedmcqa/_template_yaml`` plus ``utils.py``, PR #3842
    "fix(kormedmcqa): extract answer choice per paper Appendix B", fixing issue #3103):

    1. ``generate_until`` stop sequences ``["Q:", "</s>", "<|im_end|>", ".", "\\n\\n"]``:
       the output is cut at each of them (``s = s.split(term)[0]``, as the harness does).
       For greedy decoding this equals stopping there during generation.
    2. filter ``extract_answer`` = ``utils.ExtractChoiceFilter`` then ``take_first``: the
       cascade of the KorMedMCQA paper's Appendix B, ``정답[:\\s]*([ABCDE])``,
       ``정답은\\s*([ABCDE])\\s*입니다``, ``\\b([ABCDE])\\.``, ``\\b([ABCDE])\\b`` (all
       case-insensitive); the *last* match of the first pattern that matches, uppercased;
       "" when none matches.
    3. ``exact_match`` against the gold letter with ``ignore_case``,
       ``ignore_punctuation`` and ``regexes_to_ignore: [" ", "\\n"]``.

    A letter outside the item's options gives None. ``format_ok`` is True when the cut
    output, with spaces, newlines and ASCII punctuation removed, is exactly one option
    letter (case-insensitive): the answer a version-2.0 task (no extraction filter) would
    also have accepted.

*lenient* (both formats) reads the whole output (not cut at stop sequences) after removing
leading chat artifacts, in tiers; the first tier that finds any candidate decides, and two
different candidates within that tier are no decision (None):

    0. an explicit or leading answer: the expected form at the start of the output
       (``N)`` resp. a capital letter followed by ``.``, ``)``, ``:``, a line break or the
       end; a lone lower-case letter as the whole output), or an answer marker
       ("정답은 3", "정답: 3번", "정답: ③", "답: (C)", "정답은 C입니다", "answer is C").
    1. letters (letter format only): a standalone capital A–E: not inside a Latin word or
       number, not before a hyphen or a Hangul syllable other than a particle
       ("C입니다", "C가", "(C)", "C." count; "B형", "D-dimer", "HbA1c" do not; "vitamin D",
       "type B", "hepatitis B" are excluded by name). The number format takes no letters.
    2. option numbers 1..len(options): ``N)``, ``(N)``, ``N번``, circled ①–⑩, a bare number
       as the whole output.
    3. option texts: the output contains the text of exactly one option (NFKC, casefolded,
       whitespace collapsed; a number or Latin word at the edge of an option text must not
       continue in the output, so "5 mg" does not match "15 mg"; options shorter than 2
       characters are never matched by text). An option whose every occurrence lies inside
       an occurrence of a longer matched option is dropped ("속효성 인슐린" names only that
       option, not also "인슐린"); two options matched at separate places are ambiguous.

Strict is the published-benchmark number; lenient shows how much of a gap is format.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass
from typing import Any

from kmedqa.items import OPTION_LETTERS

ANSWER_FORMATS = ("number", "letter")
CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩"

# Korean particles / copula forms that may directly follow a standalone answer letter.
_PARTICLES = (
    "입니다|입니|이다|이며|이고|이므로|이에요|이요|예요|가|이|를|을|는|은|와|과|로|번|항|의|에"
)
# What may follow an answer letter: end, a character that is not Latin/digit/hyphen/Hangul,
# or a particle ("C입니다", "C가"); so "B형", "D-dimer", "HbA1c" are not answers.
_AFTER_LETTER = rf"(?=\Z|[^A-Za-z0-9\-가-힣]|(?:{_PARTICLES}))"
# An option number: 1–2 digits not part of a longer number, or a circled digit.
_N = r"(\d{1,2}|[①-⑩])"

EXTRACTION: dict[str, Any] = {
    # Leading chat artifacts removed before the strict (number) and lenient readings.
    "leading_artifacts": [
        r"\s+",
        r"<\|[^|>]{0,40}\|>",  # <|im_start|>, <|assistant|>, <|eot_id|> …
        r"</?s>|<bos>|<eos>|<pad>|<end_of_turn>|<start_of_turn>",
        r"(?i)(?:assistant|model)(?:\s*[:：]|\s*\n)",  # a role label left in the text
        r"(?i)(?:assistant|model)\s*\Z",
        r"[*_`>#]+",  # markdown emphasis, quote, heading markers
    ],
    "number": {
        # strict: the output (after artifacts) starts with "N)"
        "strict": r"\A(\d{1,2})\s*\)",
        # lenient tier 0: the leading form or an answer marker
        "explicit": [
            r"\A(\d{1,2})\s*\)",
            rf"(?:정답|답)\s*(?:은|는|이)?\s*[:：=]?\s*[\(\[]?\s*{_N}(?![\d.,]?\d)",
            rf"(?i)\banswer\s*(?:is|:)\s*(?:option\s*)?[\(\[]?\s*{_N}(?!\d)",
        ],
        # lenient tier 2: option numbers anywhere
        "numbers": [
            r"(?<![\d.])(\d{1,2})\s*\)",  # 3)  and (3)
            r"(?<![\d.])(\d{1,2})\s*번",  # 3번, 3번째
            r"([①-⑩])",
            r"\A[\(\[]?\s*(\d{1,2})\s*[\)\].]?\s*\Z",  # the whole output is a number
            r"(?i)\boption\s*(\d{1,2})(?!\d)",
        ],
    },
    "letter": {
        "stop_sequences": ["Q:", "</s>", "<|im_end|>", ".", "\n\n"],
        # lm-evaluation-harness kormedmcqa v3.0, utils.CHOICE_PATTERNS (all IGNORECASE)
        "cascade": [
            r"정답[:\s]*([ABCDE])",
            r"정답은\s*([ABCDE])\s*입니다",
            r"\b([ABCDE])\.",
            r"\b([ABCDE])\b",
        ],
        # lenient tier 0: a leading letter, a bare (lower-case) letter, or an answer marker
        "explicit": [
            r"\A[\(\[]?\s*([A-E])\s*(?:[.)\]:：]|\n|\Z)",  # "B", "B.", "(B)", "B: …"
            r"\A[\(\[]?\s*([a-e])\s*[\)\].:]?\s*\Z",
            rf"(?:정답|답)\s*(?:은|는|이)?\s*[:：=]?\s*[\(\[]?\s*([A-Ea-e]){_AFTER_LETTER}",
            r"(?i)\banswer\s*(?:is|:)\s*(?:option\s*)?[\(\[]?\s*([A-E])(?![A-Za-z0-9])",
        ],
        # lenient tier 1: a standalone capital letter anywhere
        "letters": [rf"(?<![A-Za-z0-9\-])([A-E]){_AFTER_LETTER}"],
        # a letter right after one of these words names a vitamin, type, … not an option
        "letter_not_after": r"(?i)(?:vitamin|비타민|type|hepatitis|group|class|phase|grade|stage)\s*\Z",
    },
    "text": {"min_chars": 2},
}

_ARTIFACTS = [re.compile(p) for p in EXTRACTION["leading_artifacts"]]
_NUM_STRICT = re.compile(EXTRACTION["number"]["strict"])
_NUM = {k: [re.compile(p) for p in EXTRACTION["number"][k]] for k in ("explicit", "numbers")}
_LET_CASCADE = [re.compile(p, re.IGNORECASE) for p in EXTRACTION["letter"]["cascade"]]
_LET = {k: [re.compile(p) for p in EXTRACTION["letter"][k]] for k in ("explicit", "letters")}
_LET_NOT_AFTER = re.compile(EXTRACTION["letter"]["letter_not_after"])
_PUNCT_TABLE = str.maketrans("", "", string.punctuation)


@dataclass(frozen=True)
class Choice:
    strict_choice: int | None
    lenient_choice: int | None
    format_ok: bool


def strip_artifacts(output: str) -> str:
    """Remove leading whitespace, special tokens, a role label and markdown markers."""
    text = output or ""
    changed = True
    while changed:
        changed = False
        for pat in _ARTIFACTS:
            m = pat.match(text)
            if m and m.end() > 0:
                text = text[m.end() :]
                changed = True
    return text.rstrip()


def lm_eval_cut(output: str) -> str:
    """The output as lm-eval's ``generate_until`` would have returned it (kormedmcqa v3)."""
    text = output or ""
    for term in EXTRACTION["letter"]["stop_sequences"]:
        text = text.split(term)[0]
    return text


def lm_eval_extract(output: str) -> str:
    """kormedmcqa v3 ``ExtractChoiceFilter`` on the cut output: a letter A–E or ""."""
    text = lm_eval_cut(output)
    for pat in _LET_CASCADE:
        matches = pat.findall(text)
        if matches:
            return matches[-1].upper()
    return ""


def _decide(indices: set[int]) -> tuple[bool, int | None]:
    """(found anything, the decision or None if ambiguous)."""
    if not indices:
        return False, None
    if len(indices) == 1:
        return True, next(iter(indices))
    return True, None


def _option_number(token: str) -> int:
    return CIRCLED.index(token) + 1 if token in CIRCLED else int(token)


def _numbers(patterns: list[re.Pattern], text: str, n: int) -> set[int]:
    found: set[int] = set()
    for pat in patterns:
        for m in pat.finditer(text):
            k = _option_number(m.group(1))
            if 1 <= k <= n:
                found.add(k - 1)
    return found


def _letters(patterns: list[re.Pattern], text: str, n: int, check_context: bool) -> set[int]:
    found: set[int] = set()
    for pat in patterns:
        for m in pat.finditer(text):
            if check_context and _LET_NOT_AFTER.search(text[: m.start(1)]):
                continue
            k = OPTION_LETTERS.index(m.group(1).upper())
            if k < n:
                found.add(k)
    return found


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _is_ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def option_text_matches(output: str, options: list[str]) -> set[int]:
    """Indices of the options whose text the output names (see the module docstring)."""
    out = _norm(output)
    spans: dict[int, list[tuple[int, int]]] = {}
    for i, opt in enumerate(options):
        o = _norm(opt)
        if len(o) < EXTRACTION["text"]["min_chars"]:
            continue
        for m in re.finditer(re.escape(o), out):
            s, e = m.span()
            if _is_ascii_alnum(o[0]) and s > 0 and _is_ascii_alnum(out[s - 1]):
                continue
            if o[0].isdigit() and s > 0 and out[s - 1] == ".":
                continue
            if _is_ascii_alnum(o[-1]) and e < len(out) and _is_ascii_alnum(out[e]):
                continue
            spans.setdefault(i, []).append((s, e))
    keep = set()
    for i, own in spans.items():
        covered = all(
            any(
                j != i and (e2 - s2) > (e - s) and s2 <= s and e <= e2
                for j, other in spans.items()
                for s2, e2 in other
            )
            for s, e in own
        )
        if not covered:
            keep.add(i)
    return keep


def _lenient(text: str, options: list[str], answer_format: str) -> int | None:
    n = len(options)
    tiers: list[set[int]] = []
    if answer_format == "number":
        tiers.append(_numbers(_NUM["explicit"], text, n))
    else:
        tiers.append(_letters(_LET["explicit"], text, n, check_context=False))
        tiers.append(_letters(_LET["letters"], text, n, check_context=True))
    tiers.append(_numbers(_NUM["numbers"], text, n))
    tiers.append(option_text_matches(text, options))
    for cands in tiers:
        found, decision = _decide(cands)
        if found:
            return decision
    return None


def extract_choice(output: str, options: list[str], answer_format: str) -> Choice:
    """Read the chosen option (0-based) from ``output``; see the module docstring for the rules."""
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"answer_format must be one of {ANSWER_FORMATS}, not {answer_format!r}")
    n = len(options)
    text = strip_artifacts(output or "")
    if answer_format == "number":
        m = _NUM_STRICT.match(text)
        strict = int(m.group(1)) - 1 if m and 1 <= int(m.group(1)) <= n else None
        format_ok = strict is not None
    else:
        letter = lm_eval_extract(output or "")
        strict = (
            OPTION_LETTERS.index(letter) if letter and OPTION_LETTERS.index(letter) < n else None
        )
        bare = re.sub(r"[ \n]", "", lm_eval_cut(output or "")).translate(_PUNCT_TABLE).upper()
        format_ok = len(bare) == 1 and bare in OPTION_LETTERS[:n]
    return Choice(strict, _lenient(text, options, answer_format), format_ok)
