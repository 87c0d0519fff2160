"""kmedqa.generation.lookup: a decode that feeds prompt-lookup guesses and keeps those the
model chooses itself decodes what the one-token decode decodes, token for token (fp32, CPU):
rejected guesses left as masked holes, a sliding window kept clear of them by packing."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from helpers.decoding import (  # noqa: E402
    engine_run,
    instruct_items,
    left_padded,
    saved_model_json,
    tiny_qwen2,
)

from kmedqa.generation.lookup import RowLookup, accepted, slot_limit  # noqa: E402

# repeated phrases, so that some guesses are right; the random models reject the rest
TEXTS = [
    "the patient reports chest pain and the patient reports chest pain",
    "fever fever fever",
    "she denies cough and takes metformin daily; she denies cough",
]


def test_a_guess_follows_the_latest_occurrence_of_the_longest_suffix():
    assert RowLookup([5, 6, 7, 8, 5, 6, 9, 5, 6]).draft(3) == [9, 5, 6]  # (5, 6): the latest
    assert RowLookup([5, 6, 7, 8, 5, 6, 9, 5, 6]).draft(1) == [9]
    assert RowLookup([1, 2, 3, 9, 2, 3, 7, 1, 2, 3]).draft(2) == [9, 2]  # (1, 2, 3) over (2, 3)
    assert RowLookup([1, 2, 3]).draft(4) == []
    row = RowLookup([1, 2])
    row.extend([1])
    assert row.draft(2) == [2, 1]  # tokens appended later are looked up too
    assert accepted([4, 5, 6], [4, 5, 7, 8]) == 2 and accepted([], [3]) == 0


def test_the_greedy_choice_is_argmaxs_ties_included():
    from kmedqa.generation.decode import greedy_choice

    torch.manual_seed(0)
    logits = torch.randn(3, 2, 5000).bfloat16()  # bf16: many equal values
    logits[0, 0, [7, 4000]] = 9.0  # a tie for the largest: the first index, as argmax
    assert torch.equal(greedy_choice(logits), logits.float().argmax(-1))
    assert greedy_choice(logits)[0, 0] == 7


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def models(tiny_model_dir, tok):
    """A Qwen2 whose layers all attend fully, and a Gemma 3 with sliding layers (window 128)."""
    from transformers import AutoModelForCausalLM

    gemma = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    return {"qwen2": tiny_qwen2(tok), "gemma3": gemma}


def decode(model, tok, budgets, k, stop_ids=(), stops=None, stats=None):
    from kmedqa.generation.decode import greedy_decode

    ids, attn = left_padded(tok, TEXTS)
    stops = stops or [[] for _ in TEXTS]
    return greedy_decode(
        model, tok, ids, attn, budgets, list(stop_ids), stops, draft_tokens=k, stats=stats
    )


@pytest.mark.parametrize("k", [1, 3, 8])
@pytest.mark.parametrize("name", ["qwen2", "gemma3"])
def test_guessing_decodes_the_one_token_decodes_tokens(models, tok, name, k):
    model = models[name]
    budgets = [60, 12, 45]
    want = decode(model, tok, budgets, 0)
    stats: dict = {}
    assert decode(model, tok, budgets, k, stats=stats) == want
    assert stats["draft_tokens_fed"] > stats["draft_tokens_kept"]  # guesses were rejected
    # a stop id from the middle of row 0, a stop string from row 2's text
    stop_id = want[0][len(want[0]) // 2]
    text = tok.decode(want[2][:6], skip_special_tokens=True)
    stops = [[], [], [text[-3:]]]
    want_cut = decode(model, tok, budgets, 0, [stop_id], stops)
    assert decode(model, tok, budgets, k, [stop_id], stops) == want_cut
    assert len(want_cut[0]) <= len(want[0]) // 2 + 1 and len(want_cut[2]) <= 6


def test_guesses_the_model_agrees_with_save_steps(models, tok):
    """Gemma's random weights repeat themselves: most guesses are kept, steps are saved."""
    plain, guessed = {}, {}
    budgets = [60, 12, 45]
    assert decode(models["gemma3"], tok, budgets, 4, stats=guessed) == decode(
        models["gemma3"], tok, budgets, 0, stats=plain
    )
    assert guessed["draft_tokens_kept"] > 0
    assert guessed["decode_steps"] < plain["decode_steps"]
    assert guessed["decode_row_steps"] < plain["decode_row_steps"]


def test_holes_never_reach_a_sliding_window(models, tok, monkeypatch):
    """Past the window (128 slots) the cache is packed, then the decode goes on unguessed."""
    import kmedqa.generation.lookup as lookup

    gemma = models["gemma3"]
    assert slot_limit(gemma) == gemma.config.sliding_window - 1
    assert slot_limit(models["qwen2"]) is None  # use_sliding_window: false
    packed = []
    real = lookup.compact
    monkeypatch.setattr(lookup, "compact", lambda c, a: packed.append(a.shape) or real(c, a))
    budgets = [150, 150, 150]
    stats: dict = {}
    got = decode(gemma, tok, budgets, 4, stats=stats)
    assert got == decode(gemma, tok, budgets, 0)
    assert packed and all(shape[1] <= slot_limit(gemma) for shape in packed)
    assert [len(r) for r in got] == budgets  # rows ran well past the window


def test_a_full_attention_cache_is_packed_once_most_slots_are_holes(models, tok, monkeypatch):
    import kmedqa.generation.lookup as lookup

    packed = []
    real = lookup.compact
    monkeypatch.setattr(lookup, "compact", lambda c, a: packed.append(a.shape) or real(c, a))
    qwen = models["qwen2"]  # keeps few guesses: 8 per step leave many holes
    budgets = [150, 150, 150]
    stats: dict = {}
    assert decode(qwen, tok, budgets, 8, stats=stats) == decode(qwen, tok, budgets, 0)
    assert packed and stats["draft_tokens_fed"] > 2 * stats["draft_tokens_kept"]


def test_the_engine_with_prompt_lookup_gives_the_default_engines_outputs(
    models, tiny_model_dir, tmp_path
):
    """Through generate(): shared-prefix batches, mixed budgets, a cache key of its own."""
    model_json = saved_model_json(models["qwen2"], tiny_model_dir, tmp_path / "qwen")
    lead = "Read the case below and answer in one short sentence, as a careful clinician would."
    items = instruct_items([f"{lead} {t}" for t in TEXTS])
    _, plain = engine_run(model_json, items, tmp_path, "plain", prompt_lookup=0)
    stats, guessed = engine_run(model_json, items, tmp_path, "guessed", prompt_lookup=4)
    assert guessed == plain
    assert stats["n_cached"] == 0  # its own cache key: other float sums
    assert stats["draft_tokens_fed"] > 0 and stats["prefix_tokens_shared"] > 0
