"""The hand-written medical knowledge behind the illustrative demo data, read from
``kmedqa/data/demo/*.yaml`` (package data).

Every sentence there was written for kmedqa; nothing is copied from AI Hub,
KorMedMCQA or any other third-party source. ``relations.yaml`` holds families of
facts ``subject -> object`` with their question templates (:class:`Relation`,
:class:`Fact`), ``cases.yaml`` the exam-style vignettes of the KorMedMCQA-style
demo (:class:`Case`); the files' headers say what each field means. The order of
everything is part of the data: :mod:`kmedqa.data.demo_records` draws from it with a seed.

This is demo content for exercising the pipeline, not clinical guidance.
"""

from __future__ import annotations

from importlib import resources
from typing import Any, NamedTuple

import yaml


class Fact(NamedTuple):
    s: str
    o: str
    note: str | None = None
    also: tuple[str, ...] = ()
    wrong: tuple[str, ...] = ()


class Relation(NamedTuple):
    name: str
    domain: int  # AI Hub department code: 14 산부인과, 15 소아청소년과, 16 응급의학과, 17 내과
    forward: tuple[str, ...]
    reverse: tuple[str, ...]
    short: str
    descriptive: str
    answer_desc: str
    facts: tuple[Fact, ...]


class Case(NamedTuple):
    vignette: str
    dx: str
    tx: str
    ex_dx: tuple[str, ...] = ()
    ex_tx: tuple[str, ...] = ()


def _read(name: str) -> Any:
    text = resources.files("kmedqa.data").joinpath("demo", name).read_text(encoding="utf-8")
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _tuples(row: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in row.items()}


def _relation(row: dict[str, Any]) -> Relation:
    facts = tuple(Fact(**_tuples(f)) for f in row["facts"])
    return Relation(**{**_tuples(row), "facts": facts})


_relations = _read("relations.yaml")
_cases = _read("cases.yaml")

RELATIONS: tuple[Relation, ...] = tuple(_relation(r) for r in _relations["relations"])
CASE_DX_STEMS: tuple[str, ...] = tuple(_cases["dx_stems"])
CASE_TX_STEMS: tuple[str, ...] = tuple(_cases["tx_stems"])
CASES: tuple[Case, ...] = tuple(Case(**_tuples(c)) for c in _cases["cases"])
