"""Declared, seeded evaluation samples of a test split.

The essential-medical study scored a stratified sample of 66 items per question type
(198) and 200 random KorMedMCQA doctor items. kmedqa evaluates full test sets by
default; such a sample is declared in the config (``datasets.<name>.sample``) so a
published number can be reproduced on the same kind of sample.
"""

from __future__ import annotations

import random
from typing import Any

from kmedqa.errors import ConfigError


def sample_items(
    items: list[dict[str, Any]], *, n: int, per: str = "none", seed: int = 42
) -> list[dict[str, Any]]:
    """``n`` items (``per='none'``) or ``n`` items per value of ``per`` (e.g. q_type), in id order."""
    items = sorted(items, key=lambda it: it["id"])
    if per == "none":
        groups = {"": items}
    else:
        groups: dict[str, list[dict[str, Any]]] = {}
        for it in items:
            groups.setdefault(str(it.get(per)), []).append(it)
    chosen = []
    for key in sorted(groups):
        members = groups[key]
        if len(members) < n:
            raise ConfigError(
                f"sample: asked for {n} items{f' per {per}' if per != 'none' else ''} but "
                f"{f'{per}={key!r} has' if per != 'none' else 'the test split has'} only {len(members)}"
            )
        chosen += random.Random(f"{seed}:{key}").sample(members, n)
    return sorted(chosen, key=lambda it: it["id"])
