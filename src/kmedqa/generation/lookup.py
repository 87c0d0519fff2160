"""Prompt-lookup drafts for the greedy decode (``evaluation.generation.prompt_lookup``).

Medical answers copy their question: a patient's age and complaint, a drug's name, an
option's text. A row whose last n tokens (n = 3, then 2, then 1) occurred earlier in its
prompt or output is guessed to go on as it went on there; :func:`kmedqa.generation.decode.
greedy_decode` feeds the row's next token and up to ``k`` guessed tokens in one forward,
and keeps the guesses up to the first one the model would not have chosen itself, plus the
model's own choice there. Each kept token is the argmax given exactly the tokens before it,
so in exact arithmetic this is greedy decoding; a forward over k + 1 positions groups its
float sums differently from a one-position forward, so in bf16 a near-tie can fall the
other way, as it can with another batch size.

Rejected guesses stay in the key/value cache as holes, masked out in the attention mask,
with position ids that skip them. A sliding window (or attention chunk) is counted in
cache slots, so the holes must never reach it: before a step would fill the slots up to the
window, :func:`compact` packs each row's live slots to the right (left padding, as a fresh
batch), and once the packed rows are that long the decode goes on without guesses. Where
every layer attends fully the cache is packed once most of its slots are holes, so that
rejected guesses do not keep costing attention and memory.
"""

from __future__ import annotations

MAX_NGRAM = 3
HOLES_SLACK = 64  # a full-attention cache is packed once holes outnumber live slots by this
PROMPT_LOOKUP = 3  # guesses per row and step: the schema's default, as measured in benchmarks/


class RowLookup:
    """One row's tokens and, for each n-gram seen, where its latest continuation starts."""

    def __init__(self, tokens: list[int], max_ngram: int = MAX_NGRAM):
        self.tokens: list[int] = []
        self.starts: list[dict[tuple[int, ...], int]] = [{} for _ in range(max_ngram + 1)]
        self.extend(tokens)

    def extend(self, new: list[int]) -> None:
        toks = self.tokens
        for t in new:
            i = len(toks)  # the n-grams ending just before position i continue at i
            for n in range(1, len(self.starts)):
                if i >= n:
                    self.starts[n][tuple(toks[i - n : i])] = i
            toks.append(t)

    def draft(self, k: int) -> list[int]:
        """Up to ``k`` tokens that followed the latest earlier occurrence of the longest
        suffix (at most ``max_ngram`` tokens) that occurred before; [] if none did."""
        toks = self.tokens
        for n in range(len(self.starts) - 1, 0, -1):
            if len(toks) > n and (start := self.starts[n].get(tuple(toks[-n:]))) is not None:
                return toks[start : start + k]
        return []


def accepted(guess: list[int], chosen: list[int]) -> int:
    """How many leading guesses equal the model's choices at their positions."""
    a = 0
    while a < len(guess) and guess[a] == chosen[a]:
        a += 1
    return a


def slot_limit(model) -> int | None:
    """The most cache slots a row may span with holes in it: one less than the smallest
    sliding window or attention chunk of ``model`` (None: every layer attends fully)."""
    from kmedqa.generation.prefix import smallest_window

    window = smallest_window(model)
    return window - 1 if window is not None else None


def compactable(cache) -> bool:
    """Whether :func:`compact` can pack ``cache``: every layer a transformers dynamic layer
    (full or sliding) holding one slot per attention-mask position."""
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    layers = getattr(cache, "layers", None)
    kinds = (DynamicLayer, DynamicSlidingWindowLayer)
    return bool(layers) and all(type(x) in kinds for x in layers)


def compact(cache, attn):
    """Pack each row's live cache slots (``attn`` == 1) to the right, in order; return the
    new attention mask (left padding). Only while no sliding layer has dropped a slot."""
    import torch

    live = attn.sum(-1)
    width = int(live.max())
    order = torch.argsort(attn, dim=-1, stable=True)  # the masked slots first, then the live
    idx = order[:, -width:]
    for layer in cache.layers:
        if not layer.is_initialized or layer.keys.numel() == 0:
            continue
        if layer.keys.shape[-2] != attn.shape[1]:
            raise RuntimeError(
                f"cache layer holds {layer.keys.shape[-2]} slots, the mask {attn.shape[1]}: "
                "a sliding window already dropped slots, so the cache cannot be packed"
            )
        g = idx[:, None, :, None].expand(-1, layer.keys.shape[1], -1, layer.keys.shape[-1])
        layer.keys, layer.values = layer.keys.gather(2, g), layer.values.gather(2, g)
        if hasattr(layer, "cumulative_length"):
            layer.cumulative_length = width
    return torch.gather(attn, 1, idx)
