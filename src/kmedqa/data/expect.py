"""Counts a study reports, checked against what the user's download gives.

A dataset may declare ``expect`` (``config.datasets.<name>.expect``)::

    expect:
      source: "study 001, section III.1-2"
      items: {n: 17280, domain: {내과: 11547, 소아청소년과: 2761}}
      test: {n: 1728, q_type: {객관식: 1403, 단답형: 164, 서술형: 161}}

``items`` is checked by ``prepare`` (the normalized items), ``train`` / ``val`` / ``test``
by ``split``. Each part may give ``n`` and counts per ``domain``, ``q_type`` or ``task``
(only the labels given are checked). A difference is a warning, written into the
prepare report / split manifest and the job's log, never a failure: a user's download
may legitimately differ from the study's (a newer release, a partial request).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

PARTS = ("items", "train", "val", "test")
FIELDS = ("domain", "q_type", "task")


def _diff(label: str, expected: int, got: int) -> str | None:
    if expected == got:
        return None
    return f"{label}: expected {expected:,} (as reported), found {got:,} ({got - expected:+,})"


def check_part(part: str, items: Sequence[dict[str, Any]], spec: dict[str, Any]) -> list[str]:
    """Warnings for one part (``items``, ``train``, ``val``, ``test``) against its spec."""
    warnings = []
    if "n" in spec:
        warnings.append(_diff(f"{part} n", int(spec["n"]), len(items)))
    for field in FIELDS:
        if field not in spec:
            continue
        counts = Counter(str(it.get(field)) for it in items)
        for label, n in spec[field].items():
            warnings.append(_diff(f"{part} {field}={label}", int(n), counts.get(str(label), 0)))
    return [w for w in warnings if w]


def check_expected(
    name: str,
    expect: dict[str, Any] | None,
    parts: dict[str, Sequence[dict[str, Any]]],
) -> dict[str, Any] | None:
    """The ``expect`` record of a report or manifest for the given ``parts``; None if none.

    ``{"source", "checked": [part, ...], "ok": bool, "warnings": [...]}``; each warning is
    also logged (``WARNING``), naming the dataset.
    """
    if not expect:
        return None
    checked = [p for p in PARTS if p in parts and p in expect]
    warnings = [w for p in checked for w in check_part(p, parts[p], expect[p])]
    for w in warnings:
        log.warning("datasets.%s.expect: %s", name, w)
    return {
        "source": expect.get("source"),
        "checked": checked,
        "ok": not warnings,
        "warnings": warnings,
    }
