"""Greedy decoding over a static KV cache, each step replayed from a CUDA graph.

On a GPU the engine's eager decode step is bound by launching kernels, not by the GPU: at
Qwen2.5-7B's shapes on an H200 the model's own step took 105 ms at batch 32 and 128 alike,
and 8–10 ms replayed from a CUDA graph over a static cache (``benchmarks/gpu_cost.py``,
``benchmarks/results/gpu_suite_h200.json``). This module is that path for the engine:
``evaluation.generation.cuda_graph: true`` (off by default until the GPU suite has timed it
against the eager engine in one run).

Every row stays in the batch until the last one has finished (a graph has fixed shapes;
on a GPU a step costs about the same at 32 rows as at 128), and the host looks at the new
tokens every ``check_every`` steps. Each row's tokens are cut where it finished, so the
result is :func:`kmedqa.generation.decode.greedy_decode`'s: each row's new token ids up to
and including the one that finished it. The attention masks are built here (4-D, additive,
so every attention implementation takes them as they are), for models whose layers all
attend fully, or whose sliding windows hold the whole batch (:func:`supports`). Off CUDA
the same steps run eagerly, which is how the CPU tests compare it with ``greedy_decode``
token for token.
"""

from __future__ import annotations

from typing import Any

from kmedqa.errors import ConfigError
from kmedqa.generation.decode import count_steps, row_finished

SLACK = 4  # cache slots past the last step: the capture's warm-up calls advance a sliding
# layer's Python-side length, which must not reach the end of its cache


def supports(model, positions: int | None = None) -> str | None:
    """Why ``model`` cannot take this path for a batch of ``positions`` cache positions (None:
    it can). A sliding-window layer is exact here only while the whole batch fits in its
    window (its static cache would roll past it)."""
    cfg = model.config
    types = set(getattr(cfg, "layer_types", None) or ["full_attention"])
    sliding = (types - {"full_attention"}) or getattr(cfg, "use_sliding_window", False)
    window = getattr(cfg, "sliding_window", None)
    if sliding and not window:
        return f"{cfg.model_type} has layers of type {sorted(types)} without a sliding_window"
    if sliding and positions is not None and positions > window:
        return (
            f"a batch needs {positions} cache positions (prompt + budget + {SLACK}), more than "
            f"{cfg.model_type}'s sliding window of {window}"
        )
    return None


def graph_decode(
    model,
    tok,
    input_ids,
    attention_mask,
    budgets: list[int],
    stop_ids: list[int],
    stop_strings: list[list[str]],
    *,
    stats: dict[str, Any] | None = None,
    check_every: int = 8,
    capture: bool | None = None,
) -> list[list[int]]:
    """``input_ids`` / ``attention_mask``: the left-padded batch. ``capture``: replay each
    step from a CUDA graph (default: on CUDA)."""
    import torch
    from transformers import StaticCache

    from kmedqa.generation.decode import cache_keyword, forward_params

    n, width = input_ids.shape
    dev = input_ids.device
    capture = dev.type == "cuda" if capture is None else capture
    steps_max = max(budgets)
    total = width + steps_max + SLACK
    if why := supports(model, total):
        raise ConfigError(f"evaluation.generation.cuda_graph: {why}; set it to false")
    dtype = next(p for p in model.parameters() if p.is_floating_point()).dtype
    neg = torch.finfo(dtype).min
    attn = attention_mask.to(dev).bool()
    pos = (attn.long().cumsum(-1) - 1).clamp(min=0)
    kw = cache_keyword(model)
    cache = StaticCache(config=model.config, max_cache_len=total)
    # slot k of the cache holds position k of the laid-out batch: the prompt's width, then
    # one slot per step; a row attends to its own prompt tokens and to every step so far
    keys = torch.zeros(n, total, dtype=torch.bool, device=dev)
    keys[:, :width] = attn
    causal = torch.ones(width, total, dtype=torch.bool, device=dev).tril()
    own = torch.eye(width, total, dtype=torch.bool, device=dev)  # a padding query sees itself
    prefill_mask = torch.zeros(n, 1, width, total, dtype=dtype, device=dev)
    prefill_mask.masked_fill_(~((causal[None] & keys[:, None]) | own[None]).unsqueeze(1), neg)
    step_mask = torch.full((n, 1, 1, total), neg, dtype=dtype, device=dev)
    step_mask.masked_fill_(keys[:, None, None], 0.0)
    keep = {"logits_to_keep": 1} if "logits_to_keep" in forward_params(model) else {}

    # older transformers write the static cache at cache_position (newer ones keep their own
    # write position on the device): both are given the same slot
    def forward(ids, mask, positions, slots):  # the greedy next token of each row
        logits = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache_position=slots,
            use_cache=True,
            **keep,
            **{kw: cache},
        ).logits
        return logits[:, -1].float().argmax(-1)

    with torch.inference_mode():
        tok_in = forward(input_ids, prefill_mask, pos, torch.arange(width, device=dev))[:, None]
        slot = torch.tensor([width], device=dev)
        pos_in = pos[:, -1:] + 1
        new = torch.empty(n, steps_max, dtype=torch.long, device=dev)
        new[:, 0] = tok_in[:, 0]

        def step():
            return forward(tok_in, step_mask, pos_in, slot)

        run = step
        if capture and steps_max > 1:
            try:
                run = _captured(step, cache, width)
            except RuntimeError as e:  # e.g. a host sync inside the step (a model's own code)
                raise ConfigError(
                    f"evaluation.generation.cuda_graph: {model.config.model_type}'s decode step "
                    f"could not be captured in a CUDA graph ({str(e)[:200]}); set it to false"
                ) from e
        finished = [False] * n
        cut = [steps_max] * n
        seen = [0] * n  # tokens of each row already looked at
        stop_set = set(int(t) for t in stop_ids)
        done_steps = 1
        while done_steps < steps_max:
            for _ in range(min(check_every, steps_max - done_steps)):
                step_mask[:, :, :, width + done_steps - 1] = 0.0  # the token fed now
                nxt = run()
                new[:, done_steps] = nxt
                tok_in.copy_(nxt[:, None])
                pos_in.add_(1)
                slot.add_(1)
                done_steps += 1
            rows = new[:, :done_steps].tolist()
            if _all_finished(rows, budgets, stop_set, stop_strings, tok, finished, cut, seen):
                break
        rows = new[:, :done_steps].tolist()
    _all_finished(rows, budgets, stop_set, stop_strings, tok, finished, cut, seen)
    count_steps(stats, done_steps - 1, n * (done_steps - 1))
    if stats is not None:
        stats["cuda_graph_batches"] = stats.get("cuda_graph_batches", 0) + bool(capture)
    return [row[: cut[r]] for r, row in enumerate(rows)]


def _all_finished(rows, budgets, stop_set, stop_strings, tok, finished, cut, seen) -> bool:
    """Mark each row's finishing step in ``cut`` (end token, budget, stop string): the
    first one, as ``greedy_decode`` stops there. True when every row has finished.
    ``seen``: how many tokens of each row earlier calls looked at (each is looked at once)."""
    for r, row in enumerate(rows):
        if finished[r]:
            continue
        for i in range(seen[r], len(row)):
            if row_finished(tok, row[: i + 1], budgets[r], stop_set, stop_strings[r]):
                finished[r], cut[r] = True, i + 1
                break
        seen[r] = len(row)
    return all(finished)


def _captured(step, cache, width: int):
    """``step`` captured in a CUDA graph, after warm-up steps on a side stream. The cache
    advances its own write position at every call (the warm-ups and the capture included),
    so it is set back to ``width`` before the first replay."""
    import torch

    lengths = [
        c for c in (getattr(x, "cumulative_length", None) for x in cache.layers) if c is not None
    ]  # older transformers write at cache_position, which the caller moves itself
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            step()
            for c in lengths:
                c.fill_(width)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step()
    for c in lengths:
        c.fill_(width)

    def replay():
        graph.replay()
        return out

    return replay
