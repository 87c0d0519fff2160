"""Greedy decoding in which every row stops at its own stop strings as it decodes.

``transformers`` ``generate`` (and lm-evaluation-harness, whose stopping criterion ends a
batch only when *every* row has produced a stop string) keeps decoding finished rows to
the batch's end. Here a row is finished at its first stop id (kept), its budget, or the
first decode step whose text contains one of its stop strings; finished rows are
dropped from the batch (their key/value cache rows too), so they cost no further work.

The result equals generate-then-cut: for greedy decoding a row's first n tokens do not
depend on what it would generate later, and the text before a stop string is already
final when the stop string appears (a later token only appends text), so cutting the
shorter decode at its stop string gives the text that cutting the full-budget decode
gives. The inputs of each step are what ``generate`` feeds the model: position ids from
the attention mask, the cache, ``logits_to_keep=1``.
"""

from __future__ import annotations

import inspect
from typing import Any


def forward_params(model) -> set[str]:
    fwd = getattr(model, "get_base_model", lambda: model)().forward
    return set(inspect.signature(fwd).parameters)


def cache_keyword(model) -> str:
    """The forward argument that takes the key/value cache (transformers 5.x renamed it)."""
    return "cache" if "cache" in forward_params(model) else "past_key_values"


def cache_of(out):
    """The key/value cache a forward returned, under either name."""
    return out.cache if getattr(out, "cache", None) is not None else out.past_key_values


def stopped_by_string(text: str, stops: list[str]) -> bool:
    return any(s and s in text for s in stops)


def row_finished(tok, new: list[int], budget: int, stop_set: set[int], stops: list[str]) -> bool:
    """Whether a row whose new tokens are ``new`` is finished: its last token ends it, it
    has its budget, or its text holds one of its stop strings."""
    if new[-1] in stop_set or len(new) >= budget:
        return True
    return bool(stops) and stopped_by_string(tok.decode(new, skip_special_tokens=True), stops)


def count_steps(stats: dict[str, Any] | None, steps: int, row_steps: int) -> None:
    """Add a batch's decode steps (forwards after the prefill) and rows fed to ``stats``."""
    if stats is not None:
        stats["decode_row_steps"] = stats.get("decode_row_steps", 0) + row_steps
        stats["decode_steps"] = stats.get("decode_steps", 0) + steps


def greedy_decode(
    model,
    tok,
    input_ids,
    attention_mask,
    budgets: list[int],
    stop_ids: list[int],
    stop_strings: list[list[str]],
    *,
    past_key_values: Any = None,
    prefix_len: int = 0,
    stats: dict[str, Any] | None = None,
) -> list[list[int]]:
    """Each row's new token ids, up to and including the token that finished it.

    ``input_ids`` / ``attention_mask``: the batch as laid out by the engine (left padding,
    or ``prefix | padding | rest`` with the prefix's cache in ``past_key_values`` and
    ``prefix_len`` its length). ``stats["decode_row_steps"]`` counts the rows fed per step,
    ``stats["decode_steps"]`` the steps (forwards after the prefill).
    """
    import torch

    n_rows, width = input_ids.shape
    dev = input_ids.device
    attn = attention_mask.to(dev).long()
    pos = attn.cumsum(-1) - 1
    pos.masked_fill_(attn == 0, 0)  # as generate's _prepare_position_ids_for_generation
    params = forward_params(model)
    kw = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
    cache_kw = cache_keyword(model)
    stop_set = set(int(t) for t in stop_ids)
    new: list[list[int]] = [[] for _ in range(n_rows)]
    alive = list(range(n_rows))  # original row of each row still in the batch
    row_steps = steps = 0
    with torch.inference_mode():
        out = model(
            input_ids=input_ids[:, prefix_len:],
            attention_mask=attn,
            position_ids=pos[:, prefix_len:],
            use_cache=True,
            **{cache_kw: past_key_values},
            **kw,
        )
        cache = cache_of(out)
        next_pos = pos[:, -1:] + 1
        while True:
            nxt = out.logits[:, -1, :].float().argmax(-1)
            keep = []
            for j, (r, t) in enumerate(zip(alive, nxt.tolist(), strict=True)):
                new[r].append(t)
                if not row_finished(tok, new[r], budgets[r], stop_set, stop_strings[r]):
                    keep.append(j)
            if not keep:
                break
            if len(keep) < len(alive):
                idx = torch.tensor(keep, device=dev)
                cache.batch_select_indices(idx)
                attn, next_pos, nxt = attn[idx], next_pos[idx], nxt[idx]
                alive = [alive[j] for j in keep]
            attn = torch.cat([attn, attn.new_ones((len(alive), 1))], dim=1)
            row_steps += len(alive)
            steps += 1
            out = model(
                input_ids=nxt[:, None],
                attention_mask=attn,
                position_ids=next_pos,
                use_cache=True,
                **{cache_kw: cache},
                **kw,
            )
            next_pos = next_pos + 1
    count_steps(stats, steps, row_steps)
    return new
