"""LLM-as-judge: reference-guided rubric scores for model answers, honestly recorded.

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
"""

from __future__ import annotations

import copy
import logging
import os
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol

import yaml

from kmedqa.errors import ConfigError, InputError, KmedqaError
from kmedqa.io import write_json, write_jsonl
from kmedqa.judge.cache import JudgeCache, cache_key
from kmedqa.judge.rubric import DEFAULT_RUBRIC, Rubric, load_rubric

log = logging.getLogger("kmedqa.judge")

API_KEY_ENV = "ANTHROPIC_API_KEY"
BACKENDS = ("anthropic", "local", "none")
STATUSES = ("ok", "invalid", "not_run")
ROW_FIELDS = (
    "id",
    "run",
    "judge_backend",
    "judge_model",
    "rubric_id",
    "rubric_version",
    "status",
    "accuracy",
    "completeness",
    "relevance",
    "rationale",
    "raw",
    "error",
)

# Everything the judge reads from the config's ``judge:`` section, with its default.
DEFAULTS: dict[str, Any] = {
    "backend": "anthropic",  # anthropic | local | none (no judge: every row "not_run")
    "model": None,  # anthropic: DEFAULT_ANTHROPIC_MODEL; local: a path or hub id (required)
    "rubric": DEFAULT_RUBRIC,  # packaged rubric name or a YAML path
    "allow_external": False,  # must be true before any item is sent to an external API
    "sample": {
        "n": 30,
        "tasks": ["short", "descriptive"],
        "seed": 42,
        "strata": ["q_type", "domain"],
    },
    "max_invalid_retries": 2,  # re-asks after a malformed / out-of-range reply
    "max_api_retries": 5,  # retries after 408/409/429/5xx/timeouts/connection errors
    "backoff": {"base_s": 1.0, "max_s": 60.0},  # exponential, with jitter
    "timeout_s": 120.0,  # per HTTP request
    "max_tokens": 1024,
    "tool_choice": "tool",  # "tool" forces record_scores; "auto" for models that reject forcing
    "extra_params": {},  # merged into messages.create (e.g. {"thinking": {"type": "disabled"}})
    "base_url": None,  # None: the SDK default (or ANTHROPIC_BASE_URL)
    "batch_threshold": 100,  # >= this many uncached requests go through the Batches API; null: never
    "batch_poll": {"initial_s": 30.0, "max_s": 300.0, "factor": 1.5, "timeout_s": 90000.0},
    "prices": {},  # {model: {input: USD/MTok, output: USD/MTok}} overriding judge/prices.yaml
    "prices_as_of": None,
    "local": {"max_new_tokens": 96, "device": "cpu", "dtype": None},
}
DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-4-6"
FORBIDDEN_PARAMS = ("temperature", "top_p", "top_k")


# --------------------------------------------------------------------------- config


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if (
            isinstance(v, dict)
            and isinstance(out.get(k), dict)
            and k not in ("prices", "extra_params")
        ):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def resolve_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """The judge config with defaults filled in; a bad value raises ConfigError naming its key.

    Accepts either the ``judge:`` section itself or a whole config that has one.
    """
    config = dict(config or {})
    if isinstance(config.get("judge"), dict):
        config = config["judge"]
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ConfigError(
            f"judge: unknown key(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}"
        )
    cfg = _merge(DEFAULTS, config)
    if cfg["backend"] not in BACKENDS:
        raise ConfigError(f"judge.backend: {cfg['backend']!r} is not one of {', '.join(BACKENDS)}")
    if cfg["model"] is None:
        if cfg["backend"] == "local":
            raise ConfigError("judge.model: the local backend needs a model path or hub id")
        if cfg["backend"] == "anthropic":
            cfg["model"] = DEFAULT_ANTHROPIC_MODEL
    if cfg["backend"] != "none" and (not isinstance(cfg["model"], str) or not cfg["model"]):
        raise ConfigError("judge.model: must be a non-empty string")
    if not isinstance(cfg["allow_external"], bool):
        raise ConfigError("judge.allow_external: must be true or false")
    for k in ("max_invalid_retries", "max_api_retries", "max_tokens"):
        if not isinstance(cfg[k], int) or isinstance(cfg[k], bool) or cfg[k] < 0:
            raise ConfigError(f"judge.{k}: must be a non-negative integer")
    if cfg["max_tokens"] < 1:
        raise ConfigError("judge.max_tokens: must be >= 1")
    bt = cfg["batch_threshold"]
    if bt is not None and (not isinstance(bt, int) or isinstance(bt, bool) or bt < 1):
        raise ConfigError("judge.batch_threshold: must be a positive integer or null")
    if cfg["tool_choice"] not in ("tool", "auto"):
        raise ConfigError("judge.tool_choice: must be 'tool' (forced) or 'auto'")
    if not isinstance(cfg["extra_params"], dict):
        raise ConfigError("judge.extra_params: must be a mapping")
    bad = [p for p in FORBIDDEN_PARAMS if p in cfg["extra_params"]]
    if bad:
        raise ConfigError(
            f"judge.extra_params: {', '.join(bad)} is not sent (current Claude models reject "
            "sampling parameters); remove it"
        )
    reserved = {"model", "messages", "system", "tools", "tool_choice", "max_tokens"}
    clash = sorted(reserved & set(cfg["extra_params"]))
    if clash:
        raise ConfigError(f"judge.extra_params: {', '.join(clash)} is set by the judge itself")
    _check_sample(cfg["sample"])
    for k in ("timeout_s",):
        if not isinstance(cfg[k], int | float) or cfg[k] <= 0:
            raise ConfigError(f"judge.{k}: must be a positive number")
    for sect, keys in (
        ("backoff", ("base_s", "max_s")),
        ("batch_poll", ("initial_s", "max_s", "factor", "timeout_s")),
    ):
        for k in keys:
            v = cfg[sect].get(k)
            if not isinstance(v, int | float) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"judge.{sect}.{k}: must be a non-negative number")
    return cfg


def _check_sample(sample: Any) -> None:
    if sample == "all":
        return
    if not isinstance(sample, dict):
        raise ConfigError("judge.sample: must be 'all' or a mapping {n, tasks, seed, strata}")
    unknown = set(sample) - {"n", "tasks", "seed", "strata"}
    if unknown:
        raise ConfigError(f"judge.sample: unknown key(s) {', '.join(sorted(unknown))}")
    n = sample.get("n")
    if n is not None and n != "all" and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ConfigError("judge.sample.n: must be a positive integer, 'all' or null")
    tasks = sample.get("tasks")
    if tasks is not None and not (
        isinstance(tasks, list) and all(isinstance(t, str) for t in tasks)
    ):
        raise ConfigError("judge.sample.tasks: must be a list of task names")
    if not isinstance(sample.get("seed", 0), int):
        raise ConfigError("judge.sample.seed: must be an integer")
    strata = sample.get("strata", [])
    if not (isinstance(strata, list) and all(isinstance(s, str) for s in strata)):
        raise ConfigError("judge.sample.strata: must be a list of item fields")


# --------------------------------------------------------------------------- privacy

_KEY_PATTERN = re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}")


def secrets_from_env() -> list[str]:
    key = os.environ.get(API_KEY_ENV)
    return [key] if key else []


def scrub(text: Any, secrets: Iterable[str] | None = None) -> Any:
    """``text`` with every secret (default: the API key from the environment) redacted."""
    if text is None:
        return None
    text = str(text)
    for s in list(secrets or []) + secrets_from_env():
        if s and len(s) >= 4:
            text = text.replace(s, "[REDACTED]")
    return _KEY_PATTERN.sub("[REDACTED]", text)


def external_gate(cfg: dict[str, Any], external: bool) -> str | None:
    """Why the judge must not run (``None`` when it may)."""
    if not external:
        return None
    if not cfg["allow_external"]:
        return (
            "judge.allow_external is false: medical items are not sent to an external API "
            "(set judge.allow_external: true to allow it, or use the local backend)"
        )
    if not os.environ.get(API_KEY_ENV):
        return f"{API_KEY_ENV} is not set"
    return None


# --------------------------------------------------------------------------- sample


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


@dataclass
class JudgeRequest:
    key: str
    system: str
    user: str


@dataclass
class JudgeReply:
    key: str
    status: str  # "ok" | "invalid"
    scores: dict[str, int] | None = None
    rationale: str | None = None
    raw: str | None = None
    error: str | None = None
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    via: str = "direct"  # "direct" | "batch" | "local"
    cacheable: bool = True  # False for transport failures: not a reply, ask again next time


@dataclass
class BackendStats:
    calls: int = 0  # judge requests (messages.create / generate()), retries included
    batch_api_calls: int = 0  # batch create / status polls / results downloads
    direct_tokens: list[int] = field(default_factory=lambda: [0, 0])  # input, output
    batch_tokens: list[int] = field(default_factory=lambda: [0, 0])
    batches: list[str] = field(default_factory=list)
    retries_transport: int = 0
    retries_invalid: int = 0
    batch_fallbacks: int = 0  # batch requests errored/expired/invalid and re-asked directly


class JudgeBackend(Protocol):
    name: str
    model: str
    external: bool
    stats: BackendStats

    def prompt(
        self, rubric: Rubric, question: str, reference: str, answer: str
    ) -> JudgeRequest: ...

    def judge(
        self,
        requests: list[JudgeRequest],
        rubric: Rubric,
        on_reply: Callable[[JudgeReply], None],
        state_dir: Path,
    ) -> None: ...


def make_backend(cfg: dict[str, Any], **kwargs: Any) -> JudgeBackend:
    """The backend named by ``cfg['backend']`` (``kwargs`` go to its constructor)."""
    if cfg["backend"] == "anthropic":
        from kmedqa.judge.backends.anthropic import AnthropicBackend

        return AnthropicBackend(cfg, **kwargs)
    from kmedqa.judge.backends.local import LocalBackend

    return LocalBackend(cfg, **kwargs)


# --------------------------------------------------------------------------- cost


@cache
def default_prices() -> dict[str, Any]:
    return yaml.safe_load(files("kmedqa").joinpath("judge/prices.yaml").read_text(encoding="utf-8"))


def cost_estimate(
    cfg: dict[str, Any], backend: str, model: str, stats: BackendStats
) -> dict[str, Any]:
    """USD estimate of this run's judge calls, clearly labelled as an estimate with its date."""
    tokens = {
        "input": stats.direct_tokens[0] + stats.batch_tokens[0],
        "output": stats.direct_tokens[1] + stats.batch_tokens[1],
    }
    if backend != "anthropic":
        return {"label": "estimate", "usd": 0.0, "note": "local model: no per-token charge"}
    table = default_prices()
    prices = dict(table.get("models") or {})
    prices.update(cfg.get("prices") or {})
    as_of = cfg.get("prices_as_of") if cfg.get("prices") else table.get("as_of")
    out: dict[str, Any] = {
        "label": "estimate",
        "currency": table.get("currency", "USD"),
        "prices_as_of": as_of or table.get("as_of"),
        "source": "config judge.prices"
        if model in (cfg.get("prices") or {})
        else table.get("source"),
        "note": "estimate from list prices per million tokens; the invoice is authoritative",
    }
    p = prices.get(model)
    if not p:
        out.update(usd=None, note=f"no price on file for model {model!r}; add judge.prices")
        return out
    disc = float(table.get("batch_discount", 0.5))
    usd = (stats.direct_tokens[0] * p["input"] + stats.direct_tokens[1] * p["output"]) / 1e6
    usd += disc * (stats.batch_tokens[0] * p["input"] + stats.batch_tokens[1] * p["output"]) / 1e6
    out.update(
        usd=round(usd, 6),
        input_per_mtok=p["input"],
        output_per_mtok=p["output"],
        batch_discount=disc,
        tokens=tokens,
    )
    return out


# --------------------------------------------------------------------------- run


def _index_generations(
    generations_by_run: dict[str, list[dict[str, Any]]],
) -> dict[str, dict[str, str]]:
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


def question_text(item: dict[str, Any]) -> str:
    """The question as the judge sees it: with its lettered options when it has any."""
    opts = item.get("options") or []
    if not opts:
        return item["question"]
    letters = "ABCDEFGHIJ"
    return item["question"] + "\n" + "\n".join(f"{letters[i]}. {o}" for i, o in enumerate(opts))


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
    gens = _index_generations(generations_by_run)
    runs = list(gens)
    items_by_id = {it["id"]: it for it in items}
    eligible = set(items_by_id)
    for run in runs:
        eligible &= set(gens[run])
    missing = {run: len(set(items_by_id) - set(gens[run])) for run in runs}
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
                question = question_text(it)
                key = cache_key(
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
                rows.append(
                    _row(
                        it["id"],
                        run,
                        backend.name,
                        backend.model,
                        rubric,
                        status="invalid",
                        error="no reply",
                    )
                )
                continue
            scores = e.get("scores") or {}
            rows.append(
                _row(
                    it["id"],
                    run,
                    backend.name,
                    backend.model,
                    rubric,
                    status=e["status"],
                    accuracy=scores.get("accuracy") if e["status"] == "ok" else None,
                    completeness=scores.get("completeness") if e["status"] == "ok" else None,
                    relevance=scores.get("relevance") if e["status"] == "ok" else None,
                    rationale=e.get("rationale"),
                    raw=e.get("raw") if e["status"] != "ok" else None,
                    error=e.get("error"),
                )
            )
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
