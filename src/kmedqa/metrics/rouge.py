"""ROUGE-1/2/L in two declared variants, both computed by the ``rouge-score`` package.

``paper``
    ``rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)`` with
    its *default* tokenizer, as the published studies used it. That tokenizer lowercases
    the text, replaces every character outside ``[a-z0-9]`` by a space and keeps only
    ``[a-z0-9]+`` tokens, so **Korean text vanishes**: two identical Korean answers have no
    tokens at all and score 0 (rouge-score returns 0 when both token lists are empty),
    while ``"2) 아달리무맙"`` against itself scores 1 because the lone token ``"2"``
    survives. Only digits and Latin words (drug names in English, units, section codes)
    are compared. This variant exists to reproduce the published numbers, not to
    measure Korean answer quality.

``ko``
    The same scorer with :class:`KoreanMorphTokenizer`: Kiwi (``kiwipiepy``) morphemes,
    lowercased. Tokens tagged as punctuation or symbols are dropped:
    ``SF`` (. ! ?), ``SP`` (, : ; /), ``SS``/``SSO``/``SSC`` (quotes, brackets),
    ``SE`` (ellipsis), ``SO`` (hyphen, tilde), ``SW`` (other symbols: %, ℃, arrows, ①)
    and ``W_EMOJI``. Everything else is kept: Hangul morphemes, Latin words (``SL``),
    numbers (``SN``, ``W_SERIAL`` such as ``120/80``), Hanja (``SH``) and list markers
    (``SB``, e.g. ``"2)"``). Punctuation and symbols glued to the ends of a kept token are
    stripped (``"2)"`` -> ``"2"``, ``"man."`` -> ``"man"``, ``"#The"`` -> ``"the"``), and
    a token left empty is dropped. Identical answers therefore score 1, and the option
    number of an AI Hub MCQ answer still counts as one token, as it does in ``paper``.

Both report the F-measure, exactly as rouge-score computes it: a text with a single token
has no bigram, so ROUGE-2 of a one-token answer is 0 even against itself (in both
variants), and an empty prediction or reference scores 0. Columns: ``rouge1_paper rouge2_paper
rougeL_paper rouge1_ko rouge2_ko rougeL_ko`` (:data:`ROUGE_COLUMNS`). Tested with
rouge-score 0.1.2 and kiwipiepy 0.24.1 (Kiwi's default model); a different Kiwi model
or version can split some words differently.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from functools import cache

from rouge_score import rouge_scorer

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
VARIANTS = ("paper", "ko")
ROUGE_COLUMNS = tuple(f"{t}_{v}" for v in VARIANTS for t in ROUGE_TYPES)

# Kiwi part-of-speech tags whose tokens the "ko" variant drops (punctuation and symbols).
KO_DROP_TAGS = frozenset({"SF", "SP", "SS", "SSO", "SSC", "SE", "SO", "SW", "W_EMOJI"})


@cache
def _kiwi():
    """One shared Kiwi instance (creating one loads its model: about a second)."""
    from kiwipiepy import Kiwi

    return Kiwi()


def _is_punct_or_symbol(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PS"


def _strip_edges(form: str) -> str:
    start, end = 0, len(form)
    while start < end and _is_punct_or_symbol(form[start]):
        start += 1
    while end > start and _is_punct_or_symbol(form[end - 1]):
        end -= 1
    return form[start:end]


class KoreanMorphTokenizer:
    """rouge-score tokenizer (an object with ``tokenize(text) -> list[str]``) on Kiwi morphemes.

    Results are memoized per text, and :meth:`prime` tokenizes many texts in one Kiwi call,
    so scoring a whole file tokenizes each distinct text once.
    """

    def __init__(self, max_cache: int = 200_000) -> None:
        self._cache: dict[str, list[str]] = {}
        self._max_cache = max_cache

    @staticmethod
    def _convert(tokens) -> list[str]:
        out = []
        for tok in tokens:
            if tok.tag in KO_DROP_TAGS:
                continue
            form = _strip_edges(tok.form).lower()
            if form:
                out.append(form)
        return out

    def prime(self, texts: Iterable[str]) -> None:
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if not todo:
            return
        if len(self._cache) + len(todo) > self._max_cache:
            self._cache.clear()
        for text, toks in zip(todo, _kiwi().tokenize(todo), strict=True):
            self._cache[text] = self._convert(toks)

    def tokenize(self, text: str) -> list[str]:
        toks = self._cache.get(text)
        if toks is None:
            toks = self._convert(_kiwi().tokenize(text))
            if len(self._cache) >= self._max_cache:
                self._cache.clear()
            self._cache[text] = toks
        return list(toks)


@cache
def _scorer(variant: str) -> rouge_scorer.RougeScorer:
    if variant == "paper":
        return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=False)
    if variant == "ko":
        return rouge_scorer.RougeScorer(
            list(ROUGE_TYPES), use_stemmer=False, tokenizer=KoreanMorphTokenizer()
        )
    raise ValueError(f"unknown ROUGE variant {variant!r}; expected one of {VARIANTS}")


def tokenize(text: str, variant: str) -> list[str]:
    """The tokens a variant compares (for inspection and tests)."""
    return _scorer(variant)._tokenizer.tokenize(text)


def rouge_scores(reference: str, prediction: str) -> dict[str, float]:
    """F-measures of ROUGE-1/2/L in both variants, keyed by :data:`ROUGE_COLUMNS`."""
    out: dict[str, float] = {}
    for variant in VARIANTS:
        scores = _scorer(variant).score(reference, prediction)
        for rtype in ROUGE_TYPES:
            out[f"{rtype}_{variant}"] = float(scores[rtype].fmeasure)
    return {col: out[col] for col in ROUGE_COLUMNS}


def rouge_scores_many(
    references: Sequence[str], predictions: Sequence[str]
) -> list[dict[str, float]]:
    """:func:`rouge_scores` for aligned lists; Kiwi tokenizes all texts in one batch."""
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    _scorer("ko")._tokenizer.prime([*references, *predictions])
    return [rouge_scores(r, p) for r, p in zip(references, predictions, strict=True)]
