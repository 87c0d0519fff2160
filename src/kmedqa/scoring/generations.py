"""Generation lines checked before scoring: one per id, with text ``output``, a ``run``, sane
token counts and a known ``status``; each fault is an :class:`~kmedqa.errors.InputError` naming
the file, the id and the field."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kmedqa.errors import InputError

GENERATION_STATUSES = ("ok", "refused", "malformed")


def check_generations(
    generations: Iterable[dict[str, Any]], file: str | None
) -> dict[str, dict[str, Any]]:
    by_id: dict[str, dict[str, Any]] = {}
    for lineno, gen in enumerate(generations, 1):
        gid = gen.get("id")
        if not isinstance(gid, str) or not gid:
            raise InputError(f"line {lineno}: missing or empty id", file=file, field="id")
        if gid in by_id:
            raise InputError("duplicate id in generations", file=file, item=gid, field="id")
        if "output" not in gen:
            raise InputError("missing field", file=file, item=gid, field="output")
        if not isinstance(gen["output"], str):
            raise InputError("must be text", file=file, item=gid, field="output")
        if not isinstance(gen.get("run"), str) or not gen["run"]:
            raise InputError("missing or empty", file=file, item=gid, field="run")
        for field in ("n_new_tokens", "max_new_tokens"):
            v = gen.get(field)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise InputError("must be a non-negative integer", file=file, item=gid, field=field)
        if gen.get("hit_budget") is not None and not isinstance(gen["hit_budget"], bool):
            raise InputError("must be true or false", file=file, item=gid, field="hit_budget")
        if gen.get("status", "ok") not in GENERATION_STATUSES:
            raise InputError(
                f"must be one of {', '.join(GENERATION_STATUSES)}",
                file=file,
                item=gid,
                field="status",
            )
        by_id[gid] = gen
    return by_id


def hit_budget(gen: dict[str, Any]) -> int | None:
    """1/0 from the generation line's ``hit_budget``, else from its token count and budget."""
    if gen.get("hit_budget") is not None:
        return int(gen["hit_budget"])
    n, budget = gen.get("n_new_tokens"), gen.get("max_new_tokens")
    return None if n is None or budget is None else int(n >= budget)
