"""The local judge backend on a tiny randomly initialized model built offline.

A random model cannot follow the rubric, so its replies are recorded ``invalid`` with
the raw text: that is the behaviour under test (no score is ever imputed).
"""

from __future__ import annotations

import pytest
from helpers.judge_fixtures import make_generations, make_items

from kmedqa.io import read_json, read_jsonl
from kmedqa.judge.backends.local import LocalBackend
from kmedqa.judge.run import judge_run

VOCAB = ["[PAD]", "[UNK]", "[BOS]", "[EOS]", "<", ">", "{", "}", '"', ":", ",", "/", "|"]
VOCAB += ["accuracy", "completeness", "relevance", "system", "user", "assistant", "JSON"]
VOCAB += [str(i) for i in range(10)]
TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} [EOS]\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant> {% endif %}"
)


@pytest.fixture(scope="module")
def tiny_judge(tmp_path_factory):
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny-judge")
    tk = Tokenizer(models.WordLevel({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        unk_token="[UNK]",
        pad_token="[PAD]",
        bos_token="[BOS]",
        eos_token="[EOS]",
    )
    tok.chat_template = TEMPLATE
    tok.save_pretrained(out)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(VOCAB),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    LlamaForCausalLM(cfg).save_pretrained(out)
    return out


def test_tiny_local_judge_records_invalid(tiny_judge, tmp_path):
    items = make_items(with_mcq=False)[:2]
    gens = make_generations(items)
    cfg = {
        "backend": "local",
        "model": str(tiny_judge),
        "sample": "all",
        "local": {"max_new_tokens": 6},
    }
    out, summ = tmp_path / "j.jsonl", tmp_path / "s.json"
    summary = judge_run(
        items, gens, cfg, tmp_path / "cache", out, summ
    )  # allow_external not needed
    rows = read_jsonl(out)
    assert summary["status"] == "ok" and summary["judge_backend"] == "local"
    assert summary["judge_model"] == str(tiny_judge)
    assert summary["n_invalid"] == 4 and summary["n_ok"] == 0 and summary["calls_made"] == 4
    assert summary["tokens"]["input"] > 100 and 0 < summary["tokens"]["output"] <= 4 * 6
    assert summary["cost_estimate"]["usd"] == 0.0
    for r in rows:
        assert r["status"] == "invalid" and isinstance(r["raw"], str)
        assert r["accuracy"] is None and r["completeness"] is None and r["relevance"] is None
        assert r["error"].startswith("invalid reply:")
    # greedy and cached: a rerun neither loads nor asks
    summary2 = judge_run(
        items, gens, cfg, tmp_path / "cache", tmp_path / "j2.jsonl", tmp_path / "s2.json"
    )
    assert summary2["cache_hits"] == 4 and summary2["calls_made"] == 0
    assert read_jsonl(tmp_path / "j2.jsonl") == rows
    assert read_json(summ)["rubric_version"] == "1"


def test_local_reply_parsing(tmp_path, monkeypatch):
    replies = iter(
        [
            '{"accuracy": 5, "completeness": 4, "relevance": 5}',
            "정확성: 5, 완전성: 4",  # no JSON
            '결과 {"accuracy": 3, "completeness": 2, "relevance": 4} 입니다',
            '{"accuracy": 3, "completeness": 2}',  # missing a score
        ]
    )
    monkeypatch.setattr(LocalBackend, "generate", lambda self, req: (next(replies), 10, 5))
    items = make_items(with_mcq=False)[:2]
    cfg = {"backend": "local", "model": "unused", "sample": "all"}
    judge_run(
        items,
        make_generations(items),
        cfg,
        tmp_path / "c",
        tmp_path / "j.jsonl",
        tmp_path / "s.json",
    )
    rows = read_jsonl(tmp_path / "j.jsonl")
    assert [r["status"] for r in rows] == ["ok", "invalid", "ok", "invalid"]
    assert (rows[0]["accuracy"], rows[2]["relevance"]) == (5, 4)
    assert rows[1]["raw"] == "정확성: 5, 완전성: 4" and rows[1]["accuracy"] is None
    assert "'relevance' is a required property" in rows[3]["error"]
    assert rows[3]["raw"] == '{"accuracy": 3, "completeness": 2}'
