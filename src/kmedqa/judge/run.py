"""LLM-as-judge orchestration: sample selection, backend choice and :func:`judge_run`.

:func:`judge_run` takes normalized items, the generations of one or more runs and the
``judge`` section of the config, and writes one row per (item, run)::

    id, run, judge_backend, judge_model, rubric_id, rubric_version,
    status ("ok" | "invalid" | "not_run"), accuracy, completeness, relevance
    (ints or null), rationale, raw (the raw reply when invalid), error

plus a summary JSON (status, reason when not run, counts, tokens, cost estimate,
calls made, cache hits).

Rules it keeps:

- No score is ever imputed. A reply that fails the rubric's schema is retried
  (``judge.max_invalid_retries``) and then recorded ``invalid`` with its raw text; a
  request that keeps failing at the transport level is recorded ``invalid`` with the
  error (and is not cached, so a rerun asks again).
- Medical items leave the machine only when ``judge.allow_external`` is true and the
  key is in ``ANTHROPIC_API_KEY``. Otherwise every row is ``not_run`` with the reason,
  and the summary says so. The key is never written anywhere: every recorded error
  is scrubbed of it.
- Every reply is cached by content (:mod:`kmedqa.judge.cache`) the moment it arrives;
  a rerun calls the judge only for what is not cached.

Types, config defaults, privacy and cost live in :mod:`kmedqa.judge.base`; the backends
in :mod:`kmedqa.judge.backends`.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

from kmedqa.errors import InputError, KmedqaError
from kmedqa.io import write_json, write_jsonl
from kmedqa.items import lettered_options
from kmedqa.judge.base import (
    ROW_FIELDS,
    JudgeBackend,
    JudgeReply,
    JudgeRequest,
    cost_estimate,
    external_gate,
    resolve_config,
    scrub,
)
from kmedqa.judge.cache import JudgeCache, reply_key
from kmedqa.judge.rubric import Rubric, load_rubric

log = logging.getLogger("kmedqa.judge")

SCORE_FIELDS = ("accuracy", "completeness", "relevance")  # the score columns of a row


def select_sample(
    items: list[dict[str, Any]], eligible_ids: set[str] | None, sample: Any
) -> list[dict[str, Any]]:
    """The items to judge: ``"all"``, or ``n`` drawn from ``tasks`` stratified by ``strata``.

    Strata get proportional shares (largest remainder); within a stratum the draw is
    ``random.Random(seed)`` over items sorted by id, so the sample depends only on
    the item set and the seed. Only ``eligible_ids`` (items every run answered) count.
    """
    pool = [it for it in items if eligible_ids is None or it["id"] in eligible_ids]
    if sample == "all":
        return sorted(pool, key=lambda it: it["id"])
    tasks = sample.get("tasks")
    if tasks:
        pool = [it for it in pool if it["task"] in tasks]
    pool.sort(key=lambda it: it["id"])
    n = sample.get("n")
    if n is None or n == "all" or n >= len(pool):
        return pool
    strata_keys = sample.get("strata") or []
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for it in pool:
        groups[tuple(str(it.get(k)) for k in strata_keys)].append(it)
    order = sorted(groups)
    quotas = {g: n * len(groups[g]) / len(pool) for g in order}
    alloc = {g: int(quotas[g]) for g in order}
    left = n - sum(alloc.values())
    for g in sorted(order, key=lambda g: (-(quotas[g] - alloc[g]), g))[:left]:
        alloc[g] += 1
    rng = random.Random(sample.get("seed", 42))
    chosen: list[dict[str, Any]] = []
    for g in order:
        chosen.extend(rng.sample(groups[g], alloc[g]))
    return sorted(chosen, key=lambda it: it["id"])


# --------------------------------------------------------------------------- backends


def make_backend(cfg: dict[str, Any], **kwargs: Any) -> JudgeBackend:
    """The backend named by ``cfg['backend']`` (``kwargs`` go to its constructor)."""
    if cfg["backend"] == "anthropic":
        from kmedqa.judge.backends.anthropic import AnthropicBackend

        return AnthropicBackend(cfg, **kwargs)
    from kmedqa.judge.backends.local import LocalBackend

    return LocalBackend(cfg, **kwargs)


def _index_generations(
    generations_by_run: dict[str, list[dict[str, Any]]],
    skipped: dict[str, int] | None = None,
) -> dict[str, dict[str, str]]:
    """Answers by run and id; lines whose ``status`` is not ``ok`` (a hosted model's
    refused or malformed reply) are not answers: left out and counted in ``skipped``."""
    skipped = {} if skipped is None else skipped
    out: dict[str, dict[str, str]] = {}
    if not isinstance(generations_by_run, dict) or not generations_by_run:
        raise InputError(
            "no generations given (need at least one RUN=GEN.jsonl)", field="generations"
        )
    for run, lines in generations_by_run.items():
        where = f"generations[{run}]"
        by_id: dict[str, str] = {}
        for i, g in enumerate(lines, 1):
            gid = g.get("id") if isinstance(g, dict) else None
            if not isinstance(gid, str) or not gid:
                raise InputError(f"line {i}: missing id", file=where, field="id")
            if not isinstance(g.get("output"), str):
                raise InputError("must be text", file=where, item=gid, field="output")
            if gid in by_id:
                raise InputError("duplicate id", file=where, item=gid, field="id")
            if g.get("run") not in (None, run):
                raise InputError(
                    f"run is {g.get('run')!r} but was given as {run!r}",
                    file=where,
                    item=gid,
                    field="run",
                )
            if g.get("status") not in (None, "ok"):  # refused / malformed: nothing to judge
                skipped[run] = skipped.get(run, 0) + 1
                continue
            by_id[gid] = g["output"]
        out[run] = by_id
    return out


def _row(
    item_id: str, run: str, backend: str, model: str, rubric: Rubric, **kw: Any
) -> dict[str, Any]:
    row = dict.fromkeys(ROW_FIELDS)
    row.update(
        id=item_id,
        run=run,
        judge_backend=backend,
        judge_model=model,
        rubric_id=rubric.id,
        rubric_version=rubric.version,
    )
    row.update(kw)
    return row


def _entry_from_reply(
    reply: JudgeReply, backend: str, model: str, rubric: Rubric
) -> dict[str, Any]:
    return {
        "key": reply.key,
        "backend": backend,
        "model": model,
        "rubric_id": rubric.id,
        "rubric_version": rubric.version,
        "status": reply.status,
        "scores": reply.scores,
        "rationale": reply.rationale,
        "raw": reply.raw,
        "error": reply.error,
        "attempts": reply.attempts,
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
        "via": reply.via,
    }


def lettered_question(item: dict[str, Any]) -> str:
    """The question as the judge sees it: with its lettered options when it has any."""
    opts = item.get("options") or []
    if not opts:
        return item["question"]
    return item["question"] + "\n" + lettered_options(opts)


def _usable(entry: dict[str, Any] | None, rubric: Rubric) -> dict[str, Any] | None:
    """A cached entry, re-checked: an "ok" entry must still satisfy the rubric's schema."""
    if entry is None or entry.get("status") not in ("ok", "invalid"):
        return None
    if entry["status"] == "ok":
        scores = entry.get("scores")
        if (
            not isinstance(scores, dict)
            or rubric.validate({k: scores.get(k) for k in rubric.keys})[0] is None
        ):
            log.warning(
                "judge cache: entry %s… has unusable scores; asking again", entry["key"][:12]
            )
            return None
    return entry


def judge_run(
    items: list[dict[str, Any]],
    generations_by_run: dict[str, list[dict[str, Any]]],
    config: dict[str, Any] | None,
    cache_dir: str | Path,
    out_path: str | Path,
    summary_path: str | Path,
    backend: JudgeBackend | None = None,
) -> dict[str, Any]:
    """Judge every sampled item's answer in every run; write rows and a summary; return the summary."""
    cfg = resolve_config(config)
    rubric = load_rubric(cfg["rubric"])
    not_answered: dict[str, int] = {}
    gens = _index_generations(generations_by_run, not_answered)
    runs = list(gens)
    items_by_id = {it["id"]: it for it in items}
    eligible = set(items_by_id)
    for run in runs:
        eligible &= set(gens[run])
    missing = {
        run: len(set(items_by_id) - set(gens[run])) - not_answered.get(run, 0) for run in runs
    }
    sample = select_sample(items, eligible, cfg["sample"])

    backend_name = backend.name if backend is not None else cfg["backend"]
    model = backend.model if backend is not None else cfg["model"]
    external = backend.external if backend is not None else backend_name == "anthropic"
    summary: dict[str, Any] = {
        "judge_backend": backend_name,
        "judge_model": model,
        "rubric_id": rubric.id,
        "rubric_version": rubric.version,
        "runs": runs,
        "sample": cfg["sample"],
        "n_items": len(sample),
        "item_ids": [it["id"] for it in sample],
        "items_without_generation": missing,
        "not_answered_skipped": {run: not_answered.get(run, 0) for run in runs},
        "n_requested": len(sample) * len(runs),
    }

    reason = external_gate(cfg, external)
    if backend is None and cfg["backend"] == "none":
        reason = "judge.backend is 'none' (no judge configured)"
    if reason is not None:
        log.warning("judge not run: %s", reason)
        rows = [
            _row(it["id"], run, backend_name, model, rubric, status="not_run", error=reason)
            for run in runs
            for it in sample
        ]
        write_jsonl(out_path, rows)
        summary.update(
            status="not_run",
            reason=reason,
            n_ok=0,
            n_invalid=0,
            n_not_run=len(rows),
            calls_made=0,
            cache_hits=0,
            tokens={"input": 0, "output": 0},
            cost_estimate=None,
        )
        write_json(summary_path, summary)
        return summary

    try:
        if backend is None:
            backend = make_backend(cfg)
        store = JudgeCache(cache_dir)
        # Build the requests, deduplicated by key: identical answers are judged once.
        keys: dict[tuple[str, str], str] = {}
        pending: dict[str, JudgeRequest] = {}
        entries: dict[str, dict[str, Any]] = {}
        hits = 0
        for run in runs:
            for it in sample:
                answer = gens[run][it["id"]]
                question = lettered_question(it)
                key = reply_key(
                    backend.name, backend.model, rubric.tag, question, it["answer"], answer
                )
                keys[(run, it["id"])] = key
                if key in entries or key in pending:
                    continue
                cached = _usable(store.get(key), rubric)
                if cached is not None:
                    entries[key] = cached
                    hits += 1
                else:
                    pending[key] = backend.prompt(rubric, question, it["answer"], answer)
                    pending[key].key = key
        log.info(
            "judge: %d rows, %d unique requests, %d cached, %d to ask %s/%s",
            len(keys),
            len(entries) + len(pending),
            hits,
            len(pending),
            backend.name,
            backend.model,
        )
        transient: dict[str, dict[str, Any]] = {}

        def on_reply(reply: JudgeReply) -> None:
            reply.error = scrub(reply.error)
            reply.raw = scrub(reply.raw)
            entry = _entry_from_reply(reply, backend.name, backend.model, rubric)
            if reply.cacheable:
                store.put(entry)
                entries[reply.key] = entry
            else:
                transient[reply.key] = entry
            log.info(
                "judge: %s… %s%s",
                reply.key[:12],
                reply.status,
                f" ({reply.error})" if reply.error else "",
            )

        if pending:
            backend.judge(list(pending.values()), rubric, on_reply, Path(cache_dir) / "_state")
    except Exception as err:  # never let the key escape through an exception message
        msg = scrub(str(err))
        if msg != str(err):
            raise KmedqaError(f"judge failed: {msg}") from None
        raise

    rows = []
    for run in runs:
        for it in sample:
            key = keys[(run, it["id"])]
            e = entries.get(key) or transient.get(key)
            if e is None:  # the backend returned without answering: say so, do not guess
                fields: dict[str, Any] = {"status": "invalid", "error": "no reply"}
            else:
                ok = e["status"] == "ok"
                scores = e.get("scores") or {}
                fields = {
                    "status": e["status"],
                    **{k: scores.get(k) if ok else None for k in SCORE_FIELDS},
                    "rationale": e.get("rationale"),
                    "raw": None if ok else e.get("raw"),
                    "error": e.get("error"),
                }
            rows.append(_row(it["id"], run, backend.name, backend.model, rubric, **fields))
    write_jsonl(out_path, rows)
    st = backend.stats
    summary.update(
        status="ok",
        reason=None,
        n_ok=sum(r["status"] == "ok" for r in rows),
        n_invalid=sum(r["status"] == "invalid" for r in rows),
        n_not_run=0,
        n_unique_requests=len(set(keys.values())),
        calls_made=st.calls,
        batch_api_calls=st.batch_api_calls,
        cache_hits=hits,
        retries={"transport": st.retries_transport, "invalid_reply": st.retries_invalid},
        batches=st.batches,
        batch_fallbacks=st.batch_fallbacks,
        tokens={
            "input": st.direct_tokens[0] + st.batch_tokens[0],
            "output": st.direct_tokens[1] + st.batch_tokens[1],
        },
        cost_estimate=cost_estimate(cfg, backend.name, backend.model, st),
    )
    write_json(summary_path, summary)
    return summary
