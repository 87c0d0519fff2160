"""Batched, greedy, resumable generation: one JSON line per item.

Items are sorted by (max_new_tokens, prompt length) and cut into a fixed batch plan,
generated with left padding and greedy decoding. A batch may hold items of different
budgets: it decodes up to its largest, each row stops at its own (a greedy continuation's
first n tokens are the n-token continuation), so no small batch is left for the few items
of a rare budget — on a CPU a decode step of 4 rows costs almost what 16 rows cost. Every finished batch is appended (and
fsync'ed) to a cache file outside Snakemake's outputs, keyed by model, adapter hash and
decoding settings. A killed job rerun skips every cached batch and, because the batch
plan is the same, the final file equals an uninterrupted run's.

Pieces: :mod:`.runners` (one batch on transformers or vLLM), :mod:`.prefix` (the shared
prompt prefix prefilled once), :mod:`.decode` (greedy decoding with stop strings),
:mod:`.cache` (the resumable cache file), :mod:`.settings` (budgets, quantization).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from kmedqa.errors import ConfigError
from kmedqa.generation.cache import cache_key, load_cache, row_key
from kmedqa.generation.lookup import MAX_NGRAM
from kmedqa.generation.prefix import PREFIX_MIN_TOKENS, common_prefix_len, shared_prefix_len
from kmedqa.generation.runners import HFRunner, VLLMRunner, stop_token_ids, vllm_lora_rank
from kmedqa.generation.settings import GenerationSettings, check_quantization, hit_budget
from kmedqa.io import append_jsonl, sha256_tree, write_jsonl
from kmedqa.items import item_sha
from kmedqa.prompts import (
    build_messages,
    format_name,
    get_format,
    max_new_tokens,
    pick_shots,
    prompt_sha,
)
from kmedqa.prompts.chat import render_prompt
from kmedqa.prompts.lmeval import lmeval_prompt

log = logging.getLogger(__name__)
DEFAULT_SETTINGS = GenerationSettings()  # the schema's defaults

__all__ = [  # the engine's public names (the pieces live in cache, prefix, runners)
    "GenerationSettings",
    "batch_plan",
    "common_prefix_len",
    "cut_at_stop",
    "generate",
    "render_prompts",
    "shared_prefix_len",
    "stop_token_ids",
    "vllm_lora_rank",
]


def render_prompts(
    items: list[dict[str, Any]],
    tok,
    formats: dict[str, str],
    *,
    shots_pool: list[dict[str, Any]] | None = None,
    k: int = 0,
    seed: int = 0,
    template_kwargs: dict[str, Any] | None = None,
    format_override: str | None = None,
) -> list[dict[str, Any]]:
    """The exact prompt text (chat template applied) and token budget of each item.

    ``format_override``: the eval set's declared format (``evaluation.eval_sets.<name>.format``),
    used for every item instead of the item's own."""
    out = []
    for item in items:
        fmt_name = format_override or format_name(item, formats)
        fmt = get_format(fmt_name)
        if fmt.get("renderer") == "lmeval":  # the harness's own prompt (kmedqa.prompts.lmeval)
            out.append(lmeval_prompt(item, fmt_name, fmt, tok, shots_pool, k, template_kwargs))
            continue
        shots = pick_shots(item, shots_pool or [], k, seed) if k else []
        messages = build_messages(item, fmt, shots)
        text = render_prompt(tok, messages, template_kwargs)
        out.append(
            {
                "id": item["id"],
                "format": fmt_name,
                "text": text,
                "prompt_sha": prompt_sha(text),
                "max_new_tokens": max_new_tokens(item, fmt),
                "stop": list(fmt.get("stop", [])),
                "shots": [s["id"] for s in shots],
            }
        )
    return out


def batch_plan(
    prompts: list[dict[str, Any]], lengths: list[int], batch_size: int
) -> list[list[int]]:
    """Indices into ``prompts`` cut into batches of ``batch_size``, in order of budget, then
    longest prompt first (so a batch mixes budgets only where one budget's items run out)."""
    order = sorted(
        range(len(prompts)),
        key=lambda i: (prompts[i]["max_new_tokens"], -lengths[i], prompts[i]["id"]),
    )
    return [order[j : j + batch_size] for j in range(0, len(order), batch_size)]


def cut_at_stop(text: str, stops: list[str]) -> str:
    cut = len(text)
    for s in stops:
        j = text.find(s)
        if j != -1:
            cut = min(cut, j)
    return text[:cut]


def generate(
    *,
    model_json: str,
    items: list[dict[str, Any]],
    formats: dict[str, str],
    run: str,
    eval_set: str,
    out_path: str,
    cache_dir: str,
    settings: GenerationSettings = DEFAULT_SETTINGS,
    adapter_dir: str | None = None,
    shots_pool: list[dict[str, Any]] | None = None,
    k: int = 0,
    shots_seed: int = 0,
    format_override: str | None = None,
    progress: bool = True,
    model=None,
    tokenizer=None,
) -> dict[str, Any]:
    """Generate greedy answers for ``items`` and write one line per item to ``out_path``.

    ``settings``: batch size, device, backend, per-task budgets, base quantization and
    prefix sharing (:class:`~kmedqa.generation.settings.GenerationSettings`, built from
    the validated config); the quantization is recorded in the stats as ``inference_base``.
    ``format_override``: the eval set's prompt format, for every item (see :func:`render_prompts`).

    ``model`` / ``tokenizer``: an already loaded model (with ``adapter_dir`` applied, if
    one is named) and tokenizer of ``model_json`` to use instead of loading them (the
    benchmark shares one model between the engine and a naive loop). ``model_json`` and
    ``adapter_dir`` still key the cache.

    Sharing a prefix changes how the numbers are summed, not what is computed, so it is
    part of the cache key.
    """
    from kmedqa.models import load_tokenizer, read_model_info

    backend, quantization = settings.backend, settings.quantization
    batch_size, max_new_tokens = settings.batch_size, settings.max_new_tokens
    if backend not in ("hf", "vllm"):
        raise ConfigError(
            f"evaluation.generation.backend: unknown backend {backend!r} (hf or vllm)"
        )
    check_quantization(quantization, backend)
    info = read_model_info(model_json)
    tok = tokenizer if tokenizer is not None else load_tokenizer(info)
    tok.padding_side = "left"
    prompts = render_prompts(
        items,
        tok,
        formats,
        shots_pool=shots_pool,
        k=k,
        seed=shots_seed,
        template_kwargs=info.get("spec", {}).get("chat_template_kwargs"),
        format_override=format_override,
    )
    for p, item in zip(prompts, items, strict=True):
        if max_new_tokens and item["task"] in max_new_tokens:
            p["max_new_tokens"] = int(max_new_tokens[item["task"]])
    enc = [
        tok(p["text"], add_special_tokens=p.get("add_special_tokens", False))["input_ids"]
        for p in prompts
    ]
    keyed = {
        "do_sample": False,
        "batch_size": batch_size,
        "merge_adapter": settings.merge_adapter,
        "batches": "mixed-budgets",  # how rows are grouped changes float sums: part of the key
    }
    if backend == "hf" and settings.cuda_graph:  # other kernels, other float sums
        keyed["cuda_graph"] = True
    elif backend == "hf" and settings.share_prefix:
        keyed["share_prefix"] = PREFIX_MIN_TOKENS
    if backend == "hf" and settings.prompt_lookup and not settings.cuda_graph:
        keyed["prompt_lookup"] = [settings.prompt_lookup, MAX_NGRAM]  # other float sums
    if backend != "hf":
        keyed["backend"] = backend
    if quantization != "none":  # another base model computes other answers
        keyed["base_quantization"] = quantization
    adapter_sha = sha256_tree(adapter_dir)[:16] if adapter_dir else None
    cache_path = Path(cache_dir) / f"{cache_key(info, adapter_sha, keyed)}.jsonl"
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    done = load_cache(cache_path)
    plan = batch_plan(prompts, [len(e) for e in enc], batch_size)
    todo = [b for b in plan if not all(row_key(prompts[i]) in done for i in b)]
    n_cached = len(items) - sum(len(b) for b in todo)
    stats = {
        "backend": backend,
        "n_items": len(items),
        "n_batches": len(plan),
        "n_cached": n_cached,
        "n_generated": 0,
        "new_tokens": 0,
        "prefix_tokens_shared": 0,
        "inference_base": {
            "quantization": quantization,
            "dtype": info.get("dtype"),
            "adapter": adapter_sha,
            "merge_adapter": settings.merge_adapter if adapter_dir else None,
        },
        "cache": str(cache_path),
    }
    t0 = time.time()
    if todo:
        if backend == "vllm":
            runner = VLLMRunner(info, tok, adapter_dir)
        else:
            runner = HFRunner(info, tok, adapter_dir, settings, model, stats)
        bar = tqdm(
            total=len(items),
            initial=n_cached,
            unit="item",
            desc=f"{run} on {eval_set}",
            disable=not progress,
        )
        for batch in todo:
            lines = []
            for i, (text, n_new) in zip(
                batch,
                runner(
                    [enc[i] for i in batch],
                    [prompts[i]["max_new_tokens"] for i in batch],
                    [prompts[i]["stop"] for i in batch],
                    eos=prompts[batch[0]].get("eos"),
                ),
                strict=True,
            ):
                cut = cut_at_stop(text, prompts[i]["stop"])
                budget = prompts[i]["max_new_tokens"]
                row = {
                    "id": prompts[i]["id"],
                    "prompt_sha": prompts[i]["prompt_sha"],
                    "output": cut.strip() if prompts[i].get("strip", True) else cut,
                    "n_new_tokens": n_new,
                    "max_new_tokens": budget,
                    "hit_budget": hit_budget(n_new, budget, len(cut) < len(text)),
                }
                done[row_key(row)] = row
                lines.append(row)
                stats["new_tokens"] += n_new
            append_jsonl(cache_path, lines)  # the whole batch, fsync'ed: batch grain
            stats["n_generated"] += len(batch)
            bar.update(len(batch))
        bar.close()
    stats["wall_time_s"] = time.time() - t0
    rows = []
    for p, item in zip(prompts, items, strict=True):
        cached = done[row_key(p)]
        rows.append(
            {
                "id": p["id"],
                "item_sha": item_sha(item),  # ties the line to its item (checked by score)
                "run": run,
                "eval_set": eval_set,
                "format": p["format"],
                "prompt_sha": p["prompt_sha"],
                "output": cached["output"],
                "n_new_tokens": cached["n_new_tokens"],
                "max_new_tokens": p["max_new_tokens"],
                "hit_budget": cached["hit_budget"],
                "shots": p["shots"],
            }
        )
    write_jsonl(out_path, rows)
    hits = sum(r["hit_budget"] for r in rows)
    stats.update(n_hit_budget=hits, truncation_rate=hits / len(rows) if rows else None)
    return stats
