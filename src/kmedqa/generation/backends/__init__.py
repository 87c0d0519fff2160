"""Generation by a hosted LLM (``models.<name>: {source: api, provider: ...}``).

:func:`generate_hosted` writes the same generation lines as the local engine
(:func:`kmedqa.generation.generate`), plus ``status`` (ok | refused | malformed) and, for a
line that is not ``ok``, ``raw`` (why). Runs are ``base`` or ``icl``; prompts are the
declared formats' chat messages (no chat template: the provider applies its own).

Every reply is cached the moment it arrives, one file per content hash of (provider,
model, base URL, request settings, messages, token budget), under ``cache_dir``; a rerun
sends only what is not cached. The summary counts tokens (input, output, thinking) over
every line of the run, cached or not, with a cost estimate when ``models.<name>.price``
is declared; ``this_invocation`` says what this job itself sent. See
:mod:`kmedqa.generation.backends.base` for the request loop (key, retries, statuses).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from kmedqa.errors import ConfigError, KmedqaError
from kmedqa.generation.backends.base import (
    HostedBackend,
    HostedReply,
    HostedRequest,
    RequestFailed,
    make_backend,
)
from kmedqa.io import dumps, sha256_text, write_jsonl
from kmedqa.items import item_sha
from kmedqa.judge.cache import JudgeCache as ContentCache  # the same atomic one-file-per-key store
from kmedqa.prompts import build_messages, format_name, get_format, max_new_tokens, pick_shots
from kmedqa.prompts import prompt_sha as _prompt_sha

log = logging.getLogger("kmedqa.generation")


def request_key(backend: HostedBackend, messages: list[dict[str, str]], budget: int) -> str:
    spec = backend.spec
    ident = [
        backend.provider,
        spec["id"],
        spec.get("base_url"),
        backend.request_params(),
        messages,
        budget,
    ]
    return sha256_text(dumps(ident))


def cost_estimate(spec: dict[str, Any], tokens: dict[str, int]) -> dict[str, Any]:
    """USD from the declared list price per million tokens (thinking billed as output)."""
    price = spec.get("price")
    if not price:
        return {"label": "estimate", "usd": None, "note": "no models.<name>.price declared"}
    usd = (
        tokens["input"] * price["input"] + (tokens["output"] + tokens["thinking"]) * price["output"]
    ) / 1e6
    return {
        "label": "estimate",
        "usd": round(usd, 6),
        "input_per_mtok": price["input"],
        "output_per_mtok": price["output"],
        "prices_as_of": price.get("as_of"),
        "note": "list prices per million tokens, thinking tokens billed as output; the invoice is authoritative",
    }


def _entry(key: str, item_id: str, reply: HostedReply) -> dict[str, Any]:
    return {
        "key": key,
        "id": item_id,
        "status": reply.status,
        "text": reply.text,
        "finish": reply.finish,
        "detail": reply.detail,
        "hit_budget": reply.hit_budget,
        "usage": {
            "input": reply.input_tokens,
            "output": reply.output_tokens,
            "thinking": reply.thinking_tokens,
        },
    }


def generate_hosted(
    *,
    spec: dict[str, Any],
    settings: dict[str, Any],
    items: list[dict[str, Any]],
    formats: dict[str, str],
    run: str,
    eval_set: str,
    out_path: str,
    cache_dir: str,
    may_leave_machine: bool,
    max_new_tokens_override: dict[str, int] | None = None,
    format_override: str | None = None,
    shots_pool: list[dict[str, Any]] | None = None,
    k: int = 0,
    shots_seed: int = 0,
    backend: HostedBackend | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Ask the hosted model for every item; write one line per item; return the stats.

    ``may_leave_machine``: the config's verdict for this eval set (and its shots' train
    data); False stops here, before a backend exists (the config check says it first).
    ``settings``: ``evaluation.generation.api`` (retries, backoff, timeout).
    """
    if not may_leave_machine:
        raise ConfigError(
            f"run {run} on {eval_set}: the data may not leave this machine "
            "(set datasets.<name>.may_leave_machine: true only if it may)"
        )
    prompts = []
    for item in items:
        fmt_name = format_override or format_name(item, formats)
        fmt = get_format(fmt_name)
        shots = pick_shots(item, shots_pool or [], k, shots_seed) if k else []
        messages = build_messages(item, fmt, shots)
        budget = max_new_tokens(item, fmt)
        if max_new_tokens_override and item["task"] in max_new_tokens_override:
            budget = int(max_new_tokens_override[item["task"]])
        prompts.append(
            {
                "id": item["id"],
                "item_sha": item_sha(item),  # ties the line to its item (checked by score)
                "format": fmt_name,
                "messages": messages,
                "prompt_sha": _prompt_sha(dumps(messages)),
                "max_new_tokens": budget,
                "shots": [s["id"] for s in shots],
            }
        )
    if backend is None:
        backend = make_backend(spec, settings)
    store = ContentCache(Path(cache_dir) / "api")
    keys = [request_key(backend, p["messages"], p["max_new_tokens"]) for p in prompts]
    entries: dict[str, dict[str, Any]] = {}
    todo: dict[str, HostedRequest] = {}  # identical requests are sent once
    for p, key in zip(prompts, keys, strict=True):
        cached = store.get(key)
        if cached is not None and cached.get("status") in ("ok", "refused", "malformed"):
            entries[key] = cached
        elif key not in todo:
            todo[key] = HostedRequest(key, p["id"], p["messages"], p["max_new_tokens"])
    n_cached = sum(key in entries for key in keys)
    log.info(
        "%s on %s: %d items, %d cached, %d to ask %s/%s",
        run,
        eval_set,
        len(prompts),
        n_cached,
        len(todo),
        backend.provider,
        backend.model,
    )
    failures: list[tuple[str, str, int]] = []
    t0 = time.time()
    bar = tqdm(total=len(prompts), initial=n_cached, unit="item", desc=run, disable=not progress)
    try:
        for req in todo.values():
            try:
                reply = backend.ask(req)
            except RequestFailed as err:
                failures.append((req.item_id, backend.scrub(str(err)), err.tries))
                log.warning(
                    "%s: no reply for %s: %s", backend.provider, req.item_id, failures[-1][1]
                )
                bar.update(1)
                continue
            entry = _entry(req.key, req.item_id, reply)
            store.put(entry)
            entries[req.key] = entry
            bar.update(1)
    except Exception as err:  # never let the key escape through an exception message
        msg = backend.scrub(str(err))
        if msg != str(err):
            raise KmedqaError(f"hosted generation failed: {msg}") from None
        raise
    finally:
        bar.close()
    wall = time.time() - t0
    st = backend.stats
    this_invocation = {
        "calls": st.calls,
        "retries_transport": st.retries_transport,
        "retries_malformed": st.retries_malformed,
        "tokens": {
            "input": st.input_tokens,
            "output": st.output_tokens,
            "thinking": st.thinking_tokens,
        },
    }
    if failures:
        first = failures[0]
        raise KmedqaError(
            f"{len(failures)} of {len(prompts)} items of {eval_set} got no reply from the "
            f"{backend.provider} API (first: item {first[0]}: {first[1]}, after {first[2]} "
            "tries); the answered items are cached: rerun to ask again for the rest"
        )
    rows = []
    tokens = {"input": 0, "output": 0, "thinking": 0}
    counts = dict.fromkeys(("ok", "refused", "malformed"), 0)
    for p, key in zip(prompts, keys, strict=True):
        e = entries[key]
        for t in tokens:
            tokens[t] += int((e.get("usage") or {}).get(t) or 0)
        counts[e["status"]] += 1
        ok = e["status"] == "ok"
        rows.append(
            {
                "id": p["id"],
                "item_sha": p["item_sha"],
                "run": run,
                "eval_set": eval_set,
                "format": p["format"],
                "prompt_sha": p["prompt_sha"],
                "status": e["status"],
                "output": e["text"].strip() if ok else "",
                "raw": None if ok else (e.get("detail") or e.get("text") or None),
                "n_new_tokens": int((e.get("usage") or {}).get("output") or 0),
                "max_new_tokens": p["max_new_tokens"],
                "hit_budget": bool(e.get("hit_budget")),
                "shots": p["shots"],
            }
        )
    write_jsonl(out_path, rows)
    hits = sum(r["hit_budget"] for r in rows)
    cost = cost_estimate(spec, tokens)
    hosted = f"{backend.provider} API, model {backend.model}" + (
        f" at {spec['base_url']}" if spec.get("base_url") else ""
    )
    hosted += f"; {tokens['input']:,} input, {tokens['output']:,} output, {tokens['thinking']:,} thinking tokens"
    if cost["usd"] is not None:
        hosted += f", about {cost['usd']:.2f} USD at list price"
    return {
        "inference_base": {"hosted": hosted},
        "backend": "api",
        "provider": backend.provider,
        "model": backend.model,
        "base_url": spec.get("base_url"),
        "request_params": backend.request_params(),
        "n_items": len(rows),
        "n_cached": n_cached,
        "n_generated": len(todo),
        "n_status": counts,
        "tokens": tokens,
        "new_tokens": tokens["output"],
        "cost_estimate": cost,
        "this_invocation": this_invocation,
        "wall_time_s": wall,
        "n_hit_budget": hits,
        "truncation_rate": hits / len(rows) if rows else None,
        "cache": str(Path(cache_dir) / "api"),
    }


__all__ = ["generate_hosted", "make_backend", "request_key"]
