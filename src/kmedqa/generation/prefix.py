"""The shared prompt prefix of a batch: prefilled once, its key/value cache repeated per row.

Used by :class:`kmedqa.generation.runners.HFRunner` where the layout is exact (see
:func:`shared_prefix_len`).
"""

from __future__ import annotations

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
    p = min(common_prefix_len(seqs), min(len(s) for s in seqs) - 1)  # every row feeds >= 1 token
    if p < PREFIX_MIN_TOKENS:
        return 0
    total = p + max(len(s) - p for s in seqs) + budget
    window = smallest_window(model)
    return 0 if window is not None and total >= window else p


def smallest_window(model) -> int | None:
    """The smallest sliding window or attention chunk of ``model``'s text config, counted in
    cache slots (None: neither is set)."""
    cfg = model.config
    text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    sizes = [getattr(text_cfg, key, None) for key in ("sliding_window", "attention_chunk_size")]
    sizes = [int(s) for s in sizes if s]
    return min(sizes) if sizes else None


def prefill_prefix(model, prefix: list[int], n_rows: int, dev):
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
