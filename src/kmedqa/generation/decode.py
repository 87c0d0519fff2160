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
the attention mask, the cache, ``logits_to_keep=1``. With ``draft_tokens`` a step feeds
each row's next token and prompt-lookup guesses after it (:mod:`kmedqa.generation.lookup`)
and keeps the guesses the model chooses itself.
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


def greedy_choice(logits):
    """The greedy token at each position of ``logits`` (..., vocab): the first index of the
    largest logit, as ``argmax`` chooses, ties included. ``max(-1).indices`` on the logits'
    own dtype: on the CPU here 4x faster than ``argmax`` on bf16 (1.9 against 7.7 ms for 16
    rows of Gemma's 262,144 logits), with no float copy."""
    return logits.max(-1).indices


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
    draft_tokens: int = 0,
    stats: dict[str, Any] | None = None,
) -> list[list[int]]:
    """Each row's new token ids, up to and including the token that finished it.

    ``input_ids`` / ``attention_mask``: the batch as laid out by the engine (left padding,
    or ``prefix | padding | rest`` with the prefix's cache in ``past_key_values`` and
    ``prefix_len`` its length). ``draft_tokens``: feed up to that many prompt-lookup
    guesses per row and step (:mod:`kmedqa.generation.lookup`; 0: one token per step).
    ``stats["decode_row_steps"]`` counts the rows fed per step, ``stats["decode_steps"]``
    the steps (forwards after the prefill), ``stats["draft_tokens_fed"]`` the positions fed
    after each row's next token (guesses, and fillers where a row has fewer guesses than
    the longest), ``stats["draft_tokens_kept"]`` those the model chose itself.
    """
    import torch

    from kmedqa.generation.lookup import (
        HOLES_SLACK,
        RowLookup,
        accepted,
        compact,
        compactable,
        slot_limit,
    )

    n_rows, width = input_ids.shape
    dev = input_ids.device
    attn = attention_mask.to(dev).long()
    pos = attn.cumsum(-1) - 1
    pos.masked_fill_(attn == 0, 0)  # as generate's _prepare_position_ids_for_generation
    kw = {"logits_to_keep": 1} if "logits_to_keep" in forward_params(model) else {}
    cache_kw = cache_keyword(model)
    stop_set = set(int(t) for t in stop_ids)
    new: list[list[int]] = [[] for _ in range(n_rows)]
    alive = list(range(n_rows))  # original row of each row still in the batch
    row_steps = steps = fed_guesses = kept_guesses = 0
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
        k = draft_tokens if draft_tokens and compactable(cache) else 0
        limit = slot_limit(model) if k else None
        rows = (
            [RowLookup(input_ids[r][attn[r].bool()].tolist()) for r in range(n_rows)] if k else []
        )
        at = pos[:, -1:]  # position of the last forward's first fed token (the prefill's last)
        chosen = greedy_choice(out.logits[:, -1:, :])  # the model's choice after each fed token
        guesses: list[list[int]] = [[] for _ in range(n_rows)]  # fed after the last token
        while True:
            keep, took = [], []  # batch index of each unfinished row; its tokens this step
            for j, (r, mine) in enumerate(zip(alive, chosen.tolist(), strict=True)):
                a = accepted(guesses[j], mine)
                fresh = []
                for t in mine[: a + 1]:
                    new[r].append(t)
                    fresh.append(t)
                    if row_finished(tok, new[r], budgets[r], stop_set, stop_strings[r]):
                        break
                else:
                    keep.append(j)
                    took.append(a)
                kept_guesses += min(a, len(fresh))  # a row that finished may not use them all
                if k:
                    rows[r].extend(fresh)
            if not keep:
                break
            q = chosen.shape[1]  # positions fed in the last forward (1 after the prefill)
            advance = torch.tensor([[a + 1] for a in took], device=dev)
            idx = torch.tensor(keep, device=dev)
            if q > 1:  # the rejected guesses' slots become holes
                live = torch.arange(q, device=dev) < advance
                attn[idx, attn.shape[1] - q :] = live.to(attn.dtype)
            if len(keep) < len(alive):
                cache.batch_select_indices(idx)
                attn, at = attn[idx], at[idx]
                alive = [alive[j] for j in keep]
            at = at + advance  # now the position of each row's next token
            nxt = [new[r][-1] for r in alive]
            if k and limit is not None and attn.shape[1] + 1 + k > limit:
                if attn.shape[1] <= limit:  # no sliding layer has dropped a slot yet
                    attn = compact(cache, attn)
                if attn.shape[1] + 1 + k > limit:
                    k = 0  # from here on no holes: one token per step, as without guesses
            elif k and attn.shape[1] > 2 * int(attn.sum(-1).max()) + HOLES_SLACK:
                attn = compact(cache, attn)  # most slots are holes: stop attending over them
            guesses = [rows[r].draft(k) for r in alive] if k else [[] for _ in alive]
            q = 1 + max(map(len, guesses))
            fed = [[t, *g, *[t] * (q - 1 - len(g))] for t, g in zip(nxt, guesses, strict=True)]
            guesses = [f[1:] for f in fed]  # a filler is checked like a guess
            fed_guesses += len(fed) * (q - 1)
            attn = torch.cat([attn, attn.new_ones((len(alive), q))], dim=1)
            row_steps += len(alive)
            steps += 1
            out = model(
                input_ids=torch.tensor(fed, device=dev),
                attention_mask=attn,
                position_ids=at + torch.arange(q, device=dev),
                use_cache=True,
                **{cache_kw: cache},
                **({"logits_to_keep": q} if kw else {}),
            )
            chosen = greedy_choice(out.logits[:, -q:, :])
    count_steps(stats, steps, row_steps)
    if stats is not None and draft_tokens:
        stats["draft_tokens_fed"] = stats.get("draft_tokens_fed", 0) + fed_guesses
        stats["draft_tokens_kept"] = stats.get("draft_tokens_kept", 0) + kept_guesses
    return new
