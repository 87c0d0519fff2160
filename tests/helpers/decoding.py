"""A tiny random Qwen2 and a left-padded batch, for the tests that compare decode paths
token for token (tests/test_graphs.py, tests/test_lookup.py)."""

from __future__ import annotations


def tiny_qwen2(tok):
    """A tiny random Qwen2 on ``tok``'s vocabulary: every layer attends fully, and its
    attention is sharp (initializer_range 0.3), so positions and masks matter."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(3)
    cfg = Qwen2Config(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=len(tok), pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False, initializer_range=0.3,
    )  # fmt: skip
    return Qwen2ForCausalLM(cfg).eval()


def left_padded(tok, texts):
    """``input_ids`` and ``attention_mask`` of ``texts``, left-padded as the engine lays a
    batch out."""
    import torch

    ids = [tok(t)["input_ids"] for t in texts]
    width = max(map(len, ids))
    input_ids = torch.full((len(ids), width), tok.pad_token_id)
    attn = torch.zeros((len(ids), width), dtype=torch.long)
    for r, s in enumerate(ids):
        input_ids[r, width - len(s) :] = torch.tensor(s)
        attn[r, width - len(s) :] = 1
    return input_ids, attn


def saved_model_json(model, tiny_model_dir, dest):
    """``model`` saved beside the tiny model's tokenizer files, with the ``model.json`` the
    workflow's materialize would leave for it."""
    import shutil

    from kmedqa.testing import write_model_json

    d = dest / "hf"
    shutil.copytree(tiny_model_dir, d)
    for f in d.glob("model*.safetensors"):
        f.unlink()
    model.save_pretrained(d)
    return write_model_json(d, dest / "model.json")


def instruct_items(questions, n=7):
    """``n`` short/descriptive items in the ``instruct`` format, cycling over ``questions``."""
    from kmedqa.items import make_item

    return [
        make_item(id=f"q{i}", dataset="d", task=("short", "descriptive")[i % 2],
                  question=f"{questions[i % len(questions)]} {i}", answer="a",
                  meta={"format": "instruct"})
        for i in range(n)
    ]  # fmt: skip


def engine_run(model_json, items, out_dir, name, **knobs):
    """One ``generate()`` of ``items`` at batch 3 on the CPU with ``knobs`` (one cache dir
    for every run in ``out_dir``); its stats and (id, output, n_new_tokens) per row."""
    import json

    from kmedqa.generation import GenerationSettings, generate

    out = out_dir / f"{name}.jsonl"
    stats = generate(
        model_json=str(model_json), items=items, formats={}, run="r", eval_set="e",
        out_path=str(out), cache_dir=str(out_dir / "cache"),
        settings=GenerationSettings(batch_size=3, device="cpu", **knobs), progress=False,
    )  # fmt: skip
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    return stats, [(r["id"], r["output"], r["n_new_tokens"]) for r in rows]
