"""kmedqa.generation.graphs: the static-cache decode (CUDA graphs on a GPU) computes what the
engine's eager decode computes. Off CUDA its steps run eagerly, token for token comparable."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from helpers.decoding import engine_run, instruct_items, saved_model_json, tiny_qwen2  # noqa: E402
from helpers.decoding import left_padded as batch  # noqa: E402


@pytest.fixture(scope="module")
def qwen_tiny(tiny_model_dir):
    """A tiny random Qwen2 (every layer attends fully) and the offline tokenizer."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    return tiny_qwen2(tok), tok


TEXTS = ["the patient reports chest pain", "fever", "she denies cough and takes metformin daily"]


@pytest.mark.parametrize("check_every", [1, 3, 8])
def test_the_same_tokens_as_the_eager_decode(qwen_tiny, check_every):
    from kmedqa.generation.decode import greedy_decode
    from kmedqa.generation.graphs import graph_decode

    model, tok = qwen_tiny
    ids, attn = batch(tok, TEXTS)
    budgets = [12, 5, 9]
    eager = greedy_decode(model, tok, ids, attn, budgets, [], [[], [], []])
    # a stop id that the eager run produced in the middle of row 0 ends that row there
    stop = [eager[0][3]]
    eager_stop = greedy_decode(model, tok, ids, attn, budgets, stop, [[], [], []])
    stats: dict = {}
    got = graph_decode(model, tok, ids, attn, budgets, [], [[], [], []], check_every=check_every)
    got_stop = graph_decode(
        model, tok, ids, attn, budgets, stop, [[], [], []], stats=stats, check_every=check_every
    )
    assert got == eager and [len(r) for r in got] == budgets
    assert got_stop == eager_stop and len(got_stop[0]) <= 4
    assert stats["decode_steps"] >= max(len(r) for r in got_stop) - 1
    assert stats["cuda_graph_batches"] == 0  # no CUDA here: the steps ran eagerly


def test_stop_strings_end_a_row_where_the_eager_decode_ends_it(qwen_tiny):
    from kmedqa.generation.decode import greedy_decode
    from kmedqa.generation.graphs import graph_decode

    model, tok = qwen_tiny
    ids, attn = batch(tok, TEXTS)
    free = greedy_decode(model, tok, ids, attn, [10, 10, 10], [], [[], [], []])
    text = tok.decode(free[2][:4], skip_special_tokens=True)
    stops = [[], [], [text[-2:]]] if len(text) >= 2 else [[], [], [text]]
    eager = greedy_decode(model, tok, ids, attn, [10, 10, 10], [], stops)
    got = graph_decode(model, tok, ids, attn, [10, 10, 10], [], stops)
    assert got == eager and len(got[2]) <= 4


def test_a_sliding_window_model_runs_while_the_batch_fits_its_window(tiny_model_dir):
    """Gemma 3 (sliding and full layers): exact while prompt + budget fit the window."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kmedqa.errors import ConfigError
    from kmedqa.generation.decode import greedy_decode
    from kmedqa.generation.graphs import graph_decode, supports

    gemma = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    window = gemma.config.sliding_window
    assert "sliding_attention" in gemma.config.layer_types
    assert supports(gemma) is None and "sliding window of" in supports(gemma, window + 1)
    ids, attn = batch(tok, TEXTS)
    budgets = [12, 5, 9]
    want = greedy_decode(gemma, tok, ids, attn, budgets, [], [[], [], []])
    assert graph_decode(gemma, tok, ids, attn, budgets, [], [[], [], []]) == want
    with pytest.raises(ConfigError, match=f"more than gemma3_text's sliding window of {window}"):
        graph_decode(gemma, tok, ids, attn, [window] * 3, [], [[], [], []])


@pytest.fixture(scope="module")
def qwen_json(qwen_tiny, tiny_model_dir, tmp_path_factory):
    """The tiny Qwen2 as the workflow's materialize would leave it (model.json)."""
    return saved_model_json(qwen_tiny[0], tiny_model_dir, tmp_path_factory.mktemp("qwen"))


def test_the_engine_with_cuda_graph_gives_the_default_engines_outputs(qwen_json, tmp_path):
    stems = ["the patient reports chest pain", "fever", "she denies cough and takes metformin"]
    items = instruct_items(stems)
    s_default, default = engine_run(qwen_json, items, tmp_path, "default")
    s_graph, graph = engine_run(qwen_json, items, tmp_path, "graph", cuda_graph=True)
    assert graph == default
    assert s_graph["n_cached"] == 0  # its own cache key: other kernels, other float sums
    assert s_graph["decode_steps"] > 0 and s_graph.get("cuda_graph_batches") == 0
