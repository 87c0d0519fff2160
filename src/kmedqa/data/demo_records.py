"""The demo's records: AI Hub 71875-style question/answer records and KorMedMCQA-style rows.

Drawn with a seed from the hand-written knowledge table in :mod:`kmedqa.data.demo_content`
(:mod:`kmedqa.data.demo` writes them in the raw formats). AI Hub-style questions come from
*specs* (a relation, a fact and a template; forward, reverse, short or descriptive), chosen
per department and question type to quotas that imitate the real set's mix.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, NamedTuple

from kmedqa.data import demo_content as content
from kmedqa.data.korean import fill
from kmedqa.data.kormedmcqa import LETTERS as KORMEDMCQA_LETTERS

DEMO_DOMAINS = (14, 15, 16, 17)  # 산부인과, 소아청소년과, 응급의학과, 내과
DOMAIN_SHARES = {17: 2 / 3, 14: 1 / 9, 15: 1 / 9, 16: 1 / 9}  # 내과 ≈ 2/3 as in the real set
Q_TYPE_SHARES = {1: 0.81, 2: 0.10, 3: 0.09}  # 객관식 ≈ 81%
DEFAULT_N_ITEMS = 480
VALIDATION_SHARE = 0.10
KORMEDMCQA_YEAR = 2099  # deliberately not a real exam year


class _Spec(NamedTuple):
    key: str  # unique and stable: relation:kind:template:fact
    domain: int
    q_type: int  # 1 객관식, 2 단답형, 3 서술형
    kind: str  # forward | reverse | short | descriptive
    template: str
    relation: content.Relation
    fact: content.Fact


def _dedup(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for v in values:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def _forward_pool(rel: content.Relation, fact: content.Fact) -> list[str]:
    if fact.wrong:
        return _dedup(w for w in fact.wrong if w != fact.o)
    return _dedup(f.o for f in rel.facts if f.o != fact.o and f.o not in fact.also)


def _reverse_pool(rel: content.Relation, fact: content.Fact) -> list[str]:
    return _dedup(
        f.s for f in rel.facts if f.s != fact.s and f.o != fact.o and fact.o not in f.also
    )


def _reverse_ok(rel: content.Relation, fact: content.Fact) -> bool:
    """A reverse question needs the object to point at exactly one subject."""
    holders = [f for f in rel.facts if f.o == fact.o or fact.o in f.also]
    return len(holders) == 1 and len(_reverse_pool(rel, fact)) >= 4


def _specs() -> list[_Spec]:
    specs: list[_Spec] = []
    for rel in content.RELATIONS:
        for i, fact in enumerate(rel.facts):
            mcq = (
                ("forward", rel.forward, len(_forward_pool(rel, fact)) >= 4),
                ("reverse", rel.reverse, _reverse_ok(rel, fact)),
            )
            for kind, templates, ok in mcq:
                if ok:
                    for t, tpl in enumerate(templates):
                        key = f"{rel.name}:{kind}:{t}:{i:03d}"
                        specs.append(_Spec(key, rel.domain, 1, kind, tpl, rel, fact))
            specs.append(
                _Spec(f"{rel.name}:short:0:{i:03d}", rel.domain, 2, "short", rel.short, rel, fact)
            )
            if fact.note:
                key = f"{rel.name}:descriptive:0:{i:03d}"
                specs.append(_Spec(key, rel.domain, 3, "descriptive", rel.descriptive, rel, fact))
    return specs


def _largest_remainder(total: int, shares: dict[Any, float]) -> dict[Any, int]:
    raw = {k: total * v / sum(shares.values()) for k, v in shares.items()}
    out = {k: int(v) for k, v in raw.items()}
    order = sorted(shares, key=lambda k: (-(raw[k] - out[k]), str(k)))
    for k in order[: total - sum(out.values())]:
        out[k] += 1
    return out


def _quotas(n_items: int) -> dict[tuple[int, int], int]:
    quotas = {}
    for domain, n_domain in _largest_remainder(n_items, DOMAIN_SHARES).items():
        for q_type, n in _largest_remainder(n_domain, Q_TYPE_SHARES).items():
            quotas[(domain, q_type)] = n
    return quotas


def _render(spec: _Spec, seed: int) -> tuple[str, str]:
    """Question and answer text of one spec, in the AI Hub raw format."""
    rel, fact = spec.relation, spec.fact
    if spec.kind == "short":
        return fill(spec.template, fact.s, fact.o), fact.o
    if spec.kind == "descriptive":
        return fill(spec.template, fact.s, fact.o), fill(rel.answer_desc, fact.s, fact.o, fact.note)
    rng = random.Random(f"{seed}:{spec.key}")
    if spec.kind == "forward":
        correct, pool = fact.o, _forward_pool(rel, fact)
    else:
        correct, pool = fact.s, _reverse_pool(rel, fact)
    options = rng.sample(pool, 4)
    pos = rng.randrange(5)
    options.insert(pos, correct)
    stem = fill(spec.template, fact.s, fact.o)
    question = stem + "\n" + "\n".join(f"{i}) {opt}" for i, opt in enumerate(options, 1))
    return question, f"{pos + 1}) {correct}"


def aihub_demo_records(seed: int = 42, n_items: int = DEFAULT_N_ITEMS) -> list[dict[str, Any]]:
    """The demo records (raw AI Hub fields plus ``split``), sorted by qa_id."""
    by_cell: dict[tuple[int, int], list[_Spec]] = defaultdict(list)
    for spec in _specs():
        by_cell[(spec.domain, spec.q_type)].append(spec)
    rng = random.Random(f"{seed}:aihub-demo")
    chosen: list[_Spec] = []
    for cell, quota in sorted(_quotas(n_items).items()):
        pool = sorted(by_cell[cell], key=lambda s: s.key)
        if len(pool) < quota:  # a content bug, not a user error
            raise ValueError(f"demo content has {len(pool)} candidates for {cell}, needs {quota}")
        chosen.extend(rng.sample(pool, quota))
    chosen.sort(key=lambda s: s.key)
    rng.shuffle(chosen)
    records = []
    questions: set[str] = set()
    for i, spec in enumerate(chosen):
        question, answer = _render(spec, seed)
        if question in questions:
            raise ValueError(f"demo content produced a duplicate question: {question!r}")
        questions.add(question)
        records.append(
            {
                "qa_id": 10001 + i,
                "domain": spec.domain,
                "q_type": spec.q_type,
                "question": question,
                "answer": answer,
                "illustrative": True,
            }
        )
    # ~10% of each department goes to Validation, as in the download
    split_of: dict[int, str] = {}
    for domain in DEMO_DOMAINS:
        ids = [r["qa_id"] for r in records if r["domain"] == domain]
        rng.shuffle(ids)
        n_val = round(len(ids) * VALIDATION_SHARE)
        for j, qa_id in enumerate(ids):
            split_of[qa_id] = "Validation" if j < n_val else "Training"
    for r in records:
        r["split"] = split_of[r["qa_id"]]
    return records


def kormedmcqa_demo_rows(seed: int = 42) -> list[dict[str, Any]]:
    """Exam-style MCQ rows in the KorMedMCQA schema (doctor exam), two per case."""
    rng = random.Random(f"{seed}:kormedmcqa-demo")
    cases = content.CASES
    questions = []
    for i, case in enumerate(cases):
        for kind in ("dx", "tx"):
            if kind == "dx":
                correct, stems = case.dx, content.CASE_DX_STEMS
                pool = [
                    c.dx
                    for c in cases
                    if c.dx != case.dx and c.dx not in case.ex_dx and case.dx not in c.ex_dx
                ]
            else:
                correct, stems = case.tx, content.CASE_TX_STEMS
                pool = [
                    c.tx
                    for c in cases
                    if c.tx != case.tx and c.tx not in case.ex_tx and case.tx not in c.ex_tx
                ]
            questions.append((f"{i:03d}:{kind}", case.vignette, stems, correct, _dedup(pool)))
    rng.shuffle(questions)
    half = (len(questions) + 1) // 2
    rows = []
    for n, (key, vignette, stems, correct, pool) in enumerate(questions):
        item_rng = random.Random(f"{seed}:{key}")
        options = item_rng.sample(pool, 4)
        pos = item_rng.randrange(5)
        options.insert(pos, correct)
        period, q_number = (1, n + 1) if n < half else (2, n - half + 1)
        rows.append(
            {
                "subject": "doctor",
                "year": KORMEDMCQA_YEAR,
                "period": period,
                "q_number": q_number,
                "question": f"{vignette} {stems[item_rng.randrange(len(stems))]}",
                **dict(zip(KORMEDMCQA_LETTERS, options, strict=True)),
                "answer": pos + 1,
                "cot": "",
            }
        )
    return rows
