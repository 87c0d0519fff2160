"""Train/eval contamination checks: long shared n-grams and near-duplicate questions.

For every eval item, two independent tests against a training set:

1. **n-gram overlap** (as lm-evaluation-harness's decontamination, after GPT-3):
   the eval item is flagged when any run of ``ngram`` (default 13) consecutive
   tokens of its text also occurs in the text of a training item. Tokens are the
   whitespace-separated words of :func:`normalize_text` (NFKC, lower case,
   punctuation and symbols -> space). For Korean these are eojeol (space-delimited
   words), not morphemes: a 13-eojeol run is a longer span than 13 English words,
   so the test is, if anything, stricter about what counts as overlap.
   The eval side is checked on its question (with options) and on question +
   answer; ``field`` in a flag says whether a shared n-gram lies in the question
   alone. The training side is always question + options + answer.
   Eval texts shorter than ``ngram`` tokens have no n-gram and are left to test 2
   (they are counted in ``n_eval_short``).
2. **near duplicate**: the eval question's set of character 5-grams (of the
   normalized text, spaces kept) has Jaccard similarity >= ``near_dup_threshold``
   with a training question's set. Exact, not MinHash: candidates come from an
   inverted index over the *prefixes* of the shingle sets (prefix filtering, as in
   AllPairs/PPJoin), which cannot miss a pair at or above the threshold, and each
   candidate's Jaccard is then computed exactly.

Both indexes are built on the eval set (thousands of items); the training set
(tens of thousands) is streamed once, so time is linear in the training text and
memory is bounded by the eval set.

A flag names the training item that overlaps most (most shared n-grams, or the
highest Jaccard; ties go to the earliest training item).
"""

from __future__ import annotations

import math
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from kmedqa.paper.tables import tex_escape

NGRAM = 13
NEAR_DUP_THRESHOLD = 0.8
SHINGLE = 5


def normalize_text(text: str) -> str:
    """NFKC, lower case, punctuation/symbols -> space, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    out = [" " if unicodedata.category(ch)[0] in "PSZC" else ch for ch in text]
    return " ".join("".join(out).split())


def question_text(item: Mapping[str, Any]) -> str:
    """The question as the model sees it: question plus options (if any)."""
    opts = item.get("options") or []
    return "\n".join([str(item.get("question") or ""), *map(str, opts)])


def full_text(item: Mapping[str, Any]) -> str:
    return question_text(item) + "\n" + str(item.get("answer") or "")


def _ngrams(tokens: list[str], n: int) -> dict[str, None]:
    """The distinct ``n``-token runs of ``tokens`` in text order (a dict, not a set: the
    report's example n-gram must not depend on Python's per-process string hashing)."""
    return dict.fromkeys(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _shingles(norm: str, k: int = SHINGLE) -> set[str]:
    if len(norm) < k:
        return {norm} if norm else set()
    return {norm[i : i + k] for i in range(len(norm) - k + 1)}


def _prefix_len(size: int, threshold: float) -> int:
    # J(x, y) >= t implies |x & y| >= t * |x|, so the first |x| - ceil(t|x|) + 1
    # elements of x (in one global order) must meet the prefix of y.
    return size - math.ceil(threshold * size - 1e-9) + 1


def question_shingles(item: Mapping[str, Any]) -> set[str]:
    """Character 5-grams of the normalized question (with options): the near-duplicate test's sets."""
    return _shingles(normalize_text(question_text(item)))


class NearDupIndex:
    """Exact Jaccard search (>= ``threshold``) over indexed shingle sets, by prefix filtering.

    ``corpus``: the shingle sets that fix the global order (rarest shingle first, then
    the string), so that two sets meeting the threshold share a prefix element. Sets
    added later are searched with :meth:`matches`; every candidate's Jaccard is exact,
    so no pair at or above the threshold is missed. Used by :func:`decontaminate`
    (eval side indexed, training streamed) and by within-dataset near-duplicate
    removal (:mod:`kmedqa.data.filters`: each kept item is indexed, later ones searched).
    """

    def __init__(self, corpus: Iterable[set[str]], threshold: float):
        if not 0.0 < threshold <= 1.0:
            raise ValueError("near_dup_threshold must be in (0, 1]")
        self.threshold = threshold
        self._df: dict[str, int] = defaultdict(int)
        for s in corpus:
            for sh in s:
                self._df[sh] += 1
        self._prefix: dict[str, list[int]] = defaultdict(list)
        self._sets: dict[int, set[str]] = {}

    def _order(self, sh: str) -> tuple[int, str]:
        return (self._df.get(sh, 0), sh)

    def _prefix_of(self, s: set[str]) -> list[str]:
        return sorted(s, key=self._order)[: _prefix_len(len(s), self.threshold)]

    def add(self, key: int, s: set[str]) -> None:
        self._sets[key] = s
        if s:
            for sh in self._prefix_of(s):
                self._prefix[sh].append(key)

    def matches(self, s: set[str]) -> list[tuple[int, float]]:
        """``[(key, jaccard), ...]`` of the indexed sets with Jaccard >= threshold, by key."""
        if not s:
            return []
        candidates: set[int] = set()
        for sh in self._prefix_of(s):
            candidates.update(self._prefix.get(sh, ()))
        out = []
        for key in sorted(candidates):
            other = self._sets[key]
            lo, hi = sorted((len(other), len(s)))
            if lo < self.threshold * hi:  # size filter: Jaccard <= lo / hi
                continue
            inter = len(other & s)
            jac = inter / (len(other) + len(s) - inter)
            if jac >= self.threshold:
                out.append((key, jac))
        return out


def decontaminate(
    train_items: Iterable[Mapping[str, Any]],
    eval_items: Iterable[Mapping[str, Any]],
    ngram: int = NGRAM,
    near_dup_threshold: float = NEAR_DUP_THRESHOLD,
) -> dict[str, Any]:
    """Flag eval items that share an ``ngram``-token run or a near-duplicate question
    with any training item. See the module docstring for the exact definitions."""
    if ngram < 1:
        raise ValueError("ngram must be >= 1")
    if not 0.0 < near_dup_threshold <= 1.0:
        raise ValueError("near_dup_threshold must be in (0, 1]")
    evals = list(eval_items)

    # --- index the eval side -------------------------------------------------
    gram_index: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    n_short = 0
    eval_shingles: list[set[str]] = []
    for e, item in enumerate(evals):
        q_tokens = normalize_text(question_text(item)).split()
        f_tokens = normalize_text(full_text(item)).split()
        q_grams = _ngrams(q_tokens, ngram)
        f_grams = _ngrams(f_tokens, ngram)
        if not f_grams:
            n_short += 1
        for g in f_grams:
            gram_index[g].append((e, g in q_grams))
        eval_shingles.append(question_shingles(item))

    index = NearDupIndex(eval_shingles, near_dup_threshold)
    for e, sh in enumerate(eval_shingles):
        index.add(e, sh)

    # --- stream the training side --------------------------------------------
    best_gram: dict[int, tuple[int, int, str]] = {}  # eval -> (shared, train idx, example)
    q_hit: set[int] = set()
    best_near: dict[int, tuple[float, int]] = {}  # eval -> (jaccard, train idx)
    train_ids: list[str] = []
    for t, item in enumerate(train_items):
        train_ids.append(str(item.get("id")))
        tokens = normalize_text(full_text(item)).split()
        shared: dict[int, int] = defaultdict(int)
        example: dict[int, str] = {}
        for g in _ngrams(tokens, ngram):
            for e, in_q in gram_index.get(g, ()):
                shared[e] += 1
                example.setdefault(e, g)
                if in_q:
                    q_hit.add(e)
        for e, c in shared.items():
            if e not in best_gram or c > best_gram[e][0]:
                best_gram[e] = (c, t, example[e])

        for e, jac in index.matches(question_shingles(item)):
            if e not in best_near or jac > best_near[e][0]:
                best_near[e] = (jac, t)

    # --- report ----------------------------------------------------------------
    flagged: list[dict[str, Any]] = []
    for e, item in enumerate(evals):
        if e in best_gram:
            c, t, g = best_gram[e]
            n_eval_grams = len(_ngrams(normalize_text(full_text(item)).split(), ngram))
            flagged.append(
                {
                    "eval_id": str(item.get("id")),
                    "train_id": train_ids[t],
                    "reason": f"{ngram}-gram",
                    "field": "question" if e in q_hit else "question+answer",
                    "overlap": round(c / n_eval_grams, 4),
                    "shared_ngrams": c,
                    "example": g,
                }
            )
        if e in best_near:
            jac, t = best_near[e]
            flagged.append(
                {
                    "eval_id": str(item.get("id")),
                    "train_id": train_ids[t],
                    "reason": "near-duplicate",
                    "field": "question",
                    "overlap": round(jac, 4),
                }
            )
    any_flag = set(best_gram) | set(best_near)
    return {
        "n_eval": len(evals),
        "n_train": len(train_ids),
        "n_eval_short": n_short,
        "n_flagged_ngram": len(best_gram),
        "n_flagged_ngram_question": len(q_hit),
        "n_flagged_near_dup": len(best_near),
        "n_flagged_any": len(any_flag),
        "params": {
            "ngram": ngram,
            "near_dup_threshold": near_dup_threshold,
            "shingle": SHINGLE,
            "tokens": "whitespace words after NFKC, lower case, punctuation/symbols removed",
        },
        "flagged": flagged,
    }


# --- tables ----------------------------------------------------------------------

_HEAD = (
    "train set",
    "eval set",
    "n eval",
    "{n}-gram overlap",
    "near duplicates",
    "flagged any",
    "%",
)


def _rows(reports: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[list[str]]:
    rows = []
    for (train_name, eval_name), r in reports.items():
        n = r["n_eval"]
        pct = f"{100.0 * r['n_flagged_any'] / n:.1f}" if n else "–"
        rows.append(
            [
                str(train_name),
                str(eval_name),
                str(n),
                str(r["n_flagged_ngram"]),
                str(r["n_flagged_near_dup"]),
                str(r["n_flagged_any"]),
                pct,
            ]
        )
    return rows


def _ngram_of(reports: Mapping[tuple[str, str], Mapping[str, Any]]) -> int:
    ns = {r.get("params", {}).get("ngram", NGRAM) for r in reports.values()}
    return ns.pop() if len(ns) == 1 else NGRAM


def make_table(reports: Mapping[tuple[str, str], Mapping[str, Any]]) -> tuple[str, str]:
    """Render ``{(train_name, eval_name): report}`` as ``(markdown, latex)`` tables.

    Columns: train set, eval set, n eval, n-gram overlap, near duplicates,
    flagged any, % (flagged any / n eval). The LaTeX table uses booktabs rules.
    """
    n = _ngram_of(reports)
    head = [h.format(n=n) for h in _HEAD]
    rows = _rows(reports)
    md = ["| " + " | ".join(head) + " |", "| " + " | ".join(["---"] * 2 + ["---:"] * 5) + " |"]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    tex = [
        r"\begin{tabular}{llrrrrr}",
        r"\toprule",
        " & ".join(tex_escape(h) for h in head) + r" \\",
        r"\midrule",
    ]
    tex += [" & ".join(tex_escape(c).replace("–", "--") for c in r) + r" \\" for r in rows]
    tex += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(md) + "\n", "\n".join(tex) + "\n"
