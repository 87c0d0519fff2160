"""Batched, greedy, resumable generation: one JSON line per item.

Items are sorted by (max_new_tokens, prompt length) and cut into a fixed batch plan,
generated with left padding and greedy decoding. A batch may hold items of different
budgets: it decodes up to its largest, each row stops at its own (a greedy continuation's
first n tokens are the n-token continuation), so no small batch is left for the few items
of a rare budget — on a CPU a decode step of 4 rows costs almost what 16 rows cost. Every finished batch is appended (and
fsync'ed) to a cache file outside Snakemake's outputs, keyed by model, adapter hash and
decoding settings. A killed job rerun skips every cached batch and, because the batch
plan is the same, the final file equals an uninterrupted run's.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from kmedqa.errors import ConfigError
from kmedqa.generation.decode import greedy_decode
from kmedqa.generation.settings import check_quantization, hit_budget
from kmedqa.io import (
    append_jsonl,
    dumps,
    read_jsonl_tail_tolerant,
    sha256_text,
    sha256_tree,
    write_jsonl,
)
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

END_OF_TURN_MARKERS = ("<end_of_turn>", "<|im_end|>", "<|eot_id|>", "<|end|>")


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


def stop_token_ids(tok, model, only_generation_config: bool = False) -> list[int]:
    """Ids that end a row: the generation config's EOS, the tokenizer's, end-of-turn markers
    of the chat template (``only_generation_config``: the first alone, as ``generate`` does)."""
    ids: list[int] = []
    gen_eos = getattr(model.generation_config, "eos_token_id", None)
    for x in gen_eos if isinstance(gen_eos, list) else [gen_eos]:
        if x is not None:
            ids.append(int(x))
    if only_generation_config:
        return sorted(set(ids))
    if tok.eos_token_id is not None:
        ids.append(int(tok.eos_token_id))
    template = tok.chat_template or ""
    for marker in END_OF_TURN_MARKERS:
        if marker in template:
            tid = tok.convert_tokens_to_ids(marker)
            if tid is not None and tid != tok.unk_token_id:
                ids.append(int(tid))
    return sorted(set(ids))


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


def row_result(tok, new: list[int], budget: int, stops: list[int]) -> tuple[str, int]:
    """Text and token count of one row: up to its first stop id (kept), at most ``budget``."""
    new = new[:budget]
    n_new = next((j + 1 for j, t in enumerate(new) if t in stops), len(new))
    return tok.decode(new[:n_new], skip_special_tokens=True), n_new


class _RowBudgets:
    """Stopping criterion: a row is finished once it has ``budgets[row]`` new tokens."""

    def __init__(self, start: int, budgets: list[int], device):
        import torch

        self.start = start
        self.budgets = torch.tensor(budgets, device=device)

    def __call__(self, input_ids, scores, **kwargs):
        return (input_ids.shape[1] - self.start) >= self.budgets


def cut_at_stop(text: str, stops: list[str]) -> str:
    cut = len(text)
    for s in stops:
        j = text.find(s)
        if j != -1:
            cut = min(cut, j)
    return text[:cut]


PREFIX_MIN_TOKENS = 16


def common_prefix_len(seqs: list[list[int]]) -> int:
    """Length of the longest token prefix that every sequence of ``seqs`` starts with."""
    first, n = seqs[0], min(len(s) for s in seqs)
    for j in range(n):
        t = first[j]
        if any(s[j] != t for s in seqs):
            return j
    return n


def shared_prefix_len(model, seqs: list[list[int]], budget: int) -> int:
    """How many leading prompt tokens a batch can prefill once for all its rows (0: none).

    The rows are laid out ``prefix | padding | rest`` instead of ``padding | prompt``; the
    prefix's key/value cache is computed once and repeated over the batch, and position
    ids follow the attention mask, so each row sees exactly its own prompt. Used only
    where that layout is exact: a decoder-only model on sdpa or eager attention, a
    dynamic cache, and no sliding window shorter than the whole sequence (a window is
    measured in cache slots, which the padding in the middle would stretch).
    """
    if len(seqs) < 2:
        return 0
    cfg = model.config
    if (
        getattr(cfg, "is_encoder_decoder", False)
        or model.generation_config.cache_implementation is not None
    ):
        return 0
    if getattr(cfg, "_attn_implementation", None) not in ("sdpa", "eager"):
        return 0
    text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    p = min(common_prefix_len(seqs), min(len(s) for s in seqs) - 1)  # every row feeds >= 1 token
    if p < PREFIX_MIN_TOKENS:
        return 0
    total = p + max(len(s) - p for s in seqs) + budget
    for key in ("sliding_window", "attention_chunk_size"):
        window = getattr(text_cfg, key, None)
        if window is not None and total >= window:
            return 0
    return p


def _prefill_prefix(model, prefix: list[int], n_rows: int, dev):
    """The key/value cache of ``prefix``, computed once and repeated for ``n_rows`` rows."""
    import inspect

    import torch

    fwd = getattr(model, "get_base_model", lambda: model)().forward
    kw = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(fwd).parameters else {}
    ids = torch.tensor([prefix], dtype=torch.long, device=dev)
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True, **kw)
    cache = out.past_key_values
    cache.batch_repeat_interleave(n_rows)
    return cache


def cache_key(info: dict[str, Any], adapter_sha: str | None, settings: dict[str, Any]) -> str:
    ident = {
        "model": info["path"],
        "revision": info.get("revision"),
        "dtype": info.get("dtype"),
        "adapter": adapter_sha,
        "settings": settings,
    }
    return sha256_text(dumps(ident))[:24]


def _key(row: dict[str, Any]) -> tuple[str, str, int | None]:
    """A generated answer is reused only for the same prompt and the same token budget."""
    return (row["id"], row["prompt_sha"], row.get("max_new_tokens"))


def load_cache(path: Path) -> dict[tuple[str, str, int | None], dict[str, Any]]:
    """Cached rows by key; a torn last line (a kill mid-write) is dropped with a warning
    and recomputed (:func:`kmedqa.io.read_jsonl_tail_tolerant`)."""
    done: dict[tuple[str, str, int | None], dict[str, Any]] = {}
    for row in read_jsonl_tail_tolerant(path):
        if isinstance(row.get("id"), str) and isinstance(row.get("prompt_sha"), str):
            done[_key(row)] = row
    return done


def generate(
    *,
    model_json: str,
    items: list[dict[str, Any]],
    formats: dict[str, str],
    run: str,
    eval_set: str,
    out_path: str,
    cache_dir: str,
    adapter_dir: str | None = None,
    merge_adapter: bool = False,
    batch_size: int = 16,
    device: str = "auto",
    shots_pool: list[dict[str, Any]] | None = None,
    k: int = 0,
    shots_seed: int = 0,
    progress: bool = True,
    share_prefix: bool = True,
    backend: str = "hf",
    max_new_tokens: dict[str, int] | None = None,
    format_override: str | None = None,
    quantization: str = "none",
    model=None,
    tokenizer=None,
) -> dict[str, Any]:
    """Generate greedy answers for ``items`` and write one line per item to ``out_path``.

    ``backend``: ``hf`` (transformers, any device) or ``vllm`` (when vLLM is installed;
    LoRA adapters through ``LoRARequest``). ``max_new_tokens``: per-task budgets that
    override the prompt format's (``evaluation.generation.max_new_tokens``).
    ``format_override``: the eval set's prompt format, for every item (see :func:`render_prompts`).
    ``quantization``: how the base model is loaded (``none`` or ``nf4``, see
    :func:`inference_quantization`); recorded in the stats as ``inference_base``.

    ``model`` / ``tokenizer``: an already loaded model (with ``adapter_dir`` applied, if
    one is named) and tokenizer of ``model_json`` to use instead of loading them (the
    benchmark shares one model between the engine and a naive loop). ``model_json`` and
    ``adapter_dir`` still key the cache.

    ``share_prefix``: prefill the prompt prefix that all rows of a batch share (a system
    prompt, say) once per batch instead of once per row (see :func:`shared_prefix_len`).
    It changes how the numbers are summed, not what is computed, so it is part of the
    cache key.
    """
    from kmedqa.models import load_tokenizer, read_model_info

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
    settings = {
        "do_sample": False,
        "batch_size": batch_size,
        "merge_adapter": merge_adapter,
        "batches": "mixed-budgets",  # how rows are grouped changes float sums: part of the key
    }
    if backend == "hf" and share_prefix:
        settings["share_prefix"] = PREFIX_MIN_TOKENS
    if backend != "hf":
        settings["backend"] = backend
    if quantization != "none":  # another base model computes other answers
        settings["base_quantization"] = quantization
    adapter_sha = sha256_tree(adapter_dir)[:16] if adapter_dir else None
    cache_path = Path(cache_dir) / f"{cache_key(info, adapter_sha, settings)}.jsonl"
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    done = load_cache(cache_path)
    plan = batch_plan(prompts, [len(e) for e in enc], batch_size)
    todo = [b for b in plan if not all(_key(prompts[i]) in done for i in b)]
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
            "merge_adapter": merge_adapter if adapter_dir else None,
        },
        "cache": str(cache_path),
    }
    t0 = time.time()
    if todo:
        if backend == "vllm":
            runner = _VLLMRunner(info, tok, adapter_dir)
        else:
            runner = _HFRunner(
                info,
                tok,
                adapter_dir,
                merge_adapter,
                device,
                share_prefix,
                model,
                stats,
                quantization,
            )
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
                done[_key(row)] = row
                lines.append(row)
                stats["new_tokens"] += n_new
            append_jsonl(cache_path, lines)  # the whole batch, fsync'ed: batch grain
            stats["n_generated"] += len(batch)
            bar.update(len(batch))
        bar.close()
    stats["wall_time_s"] = time.time() - t0
    rows = []
    for p, item in zip(prompts, items, strict=True):
        cached = done[_key(p)]
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


class _HFRunner:
    """transformers ``generate`` on one batch: left padding, optional shared prefix."""

    def __init__(
        self, info, tok, adapter_dir, merge_adapter, device, share_prefix, model, stats, quant
    ):
        from kmedqa.models import load_model

        if model is None:
            model = load_model(info, quantization=quant, device=device)
            if adapter_dir:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, adapter_dir)
                if merge_adapter:
                    model = model.merge_and_unload()
        model.eval()
        self.model, self.tok, self.share_prefix, self.stats = model, tok, share_prefix, stats
        self.stops = stop_token_ids(tok, model)
        self.dev = next(model.parameters()).device

    def __call__(
        self, seqs: list[list[int]], budgets: list[int], stops: list[list[str]], eos=None
    ) -> list[tuple[str, int]]:
        import torch
        from transformers import StoppingCriteriaList

        pad_id = self.tok.pad_token_id
        budget = max(budgets)
        p = shared_prefix_len(self.model, seqs, budget) if self.share_prefix else 0
        width = p + max(len(s) - p for s in seqs)
        input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        attn = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):  # prefix (if shared) | left padding | rest of the prompt
            input_ids[r, :p] = torch.tensor(s[:p], dtype=torch.long)
            attn[r, :p] = 1
            input_ids[r, width - (len(s) - p) :] = torch.tensor(s[p:], dtype=torch.long)
            attn[r, width - (len(s) - p) :] = 1
        extra = {}
        if len(set(budgets)) > 1:  # rows of smaller budgets finish early, not the batch
            extra["stopping_criteria"] = StoppingCriteriaList(
                [_RowBudgets(width, budgets, self.dev)]
            )
        with torch.inference_mode():
            if p:
                extra["past_key_values"] = _prefill_prefix(
                    self.model, seqs[0][:p], len(seqs), self.dev
                )
                self.stats["prefix_tokens_shared"] += p * (len(seqs) - 1)
            if any(stops):  # each row stops at its stop strings as it decodes
                ids = stop_token_ids(self.tok, self.model, only_generation_config=eos is not None)
                new = greedy_decode(
                    self.model, self.tok, input_ids.to(self.dev), attn, budgets, ids, stops,
                    past_key_values=extra.get("past_key_values"), prefix_len=p, stats=self.stats,
                )  # fmt: skip
                return [row_result(self.tok, n, b, ids) for n, b in zip(new, budgets, strict=True)]
            out = self.model.generate(
                input_ids=input_ids.to(self.dev),
                attention_mask=attn.to(self.dev),
                do_sample=False,
                max_new_tokens=budget,
                eos_token_id=self.stops,
                pad_token_id=pad_id,
                **extra,
            )
        return [
            row_result(self.tok, out[r, width:].tolist(), budgets[r], self.stops)
            for r in range(len(seqs))
        ]


VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's LoRAConfig accepts only these


def vllm_lora_rank(rank: int) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts that holds an adapter of rank ``rank``."""
    for r in VLLM_LORA_RANKS:
        if r >= rank:
            return r
    raise ConfigError(
        f"LoRA rank {rank} is above vLLM's largest max_lora_rank (512); use backend: hf"
    )


class _VLLMRunner:
    """vLLM offline engine, greedy; a LoRA adapter is served through ``LoRARequest``.

    Used when ``evaluation.generation.backend: vllm`` (vLLM installed, CUDA machine). It
    sees the same token ids, budgets and stop ids as the HF runner.
    """

    def __init__(self, info, tok, adapter_dir):
        try:
            from vllm import LLM
            from vllm.lora.request import LoRARequest
        except ModuleNotFoundError:
            raise ConfigError(
                "evaluation.generation.backend is 'vllm' but vLLM is not installed (pip install vllm), "
                "or use backend: hf"
            ) from None
        kwargs: dict[str, Any] = {
            "model": info["path"],
            "revision": info.get("revision"),
            "seed": 0,
        }
        if info.get("dtype") not in (None, "auto"):
            kwargs["dtype"] = info["dtype"]
        self.lora = None
        if adapter_dir:
            import json

            rank = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())["r"]
            kwargs.update(enable_lora=True, max_lora_rank=vllm_lora_rank(rank))
            self.lora = LoRARequest("adapter", 1, str(adapter_dir))
        self.llm, self.tok = LLM(**kwargs), tok
        gen_eos = self.llm.get_tokenizer().eos_token_id
        self.stops = sorted(
            set(stop_token_ids(tok, _GenConfigView(info["path"])))
            | ({gen_eos} if gen_eos is not None else set())
        )

    def __call__(
        self, seqs: list[list[int]], budgets: list[int], stops: list[list[str]], eos=None
    ) -> list[tuple[str, int]]:
        from vllm import SamplingParams

        params = [  # one per prompt: vLLM takes a list as long as the prompts
            SamplingParams(
                temperature=0.0, max_tokens=b, stop_token_ids=self.stops, stop=stop or None
            )
            for b, stop in zip(budgets, stops, strict=True)
        ]
        outs = self.llm.generate(
            [{"prompt_token_ids": s} for s in seqs], params, lora_request=self.lora, use_tqdm=False
        )
        return [(o.outputs[0].text, len(o.outputs[0].token_ids)) for o in outs]


class _GenConfigView:
    """Just enough of a model for :func:`stop_token_ids`: its generation config."""

    def __init__(self, path: str):
        from transformers import GenerationConfig

        try:
            self.generation_config = GenerationConfig.from_pretrained(path)
        except OSError:
            self.generation_config = GenerationConfig()
