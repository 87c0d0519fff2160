"""Continued pre-training -> SFT on a tiny model: corpus formats, lower LM loss, merged start."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers.workflow import run_snakemake

from kmedqa.errors import ConfigError, InputError
from kmedqa.io import write_jsonl
from kmedqa.items import make_item
from kmedqa.testing import CORPUS, train_outputs, write_model_json
from kmedqa.training import train
from kmedqa.training.cpt import cpt_settings, merge_cpt, read_corpus, split_documents, train_cpt

DOCS = [CORPUS[0], CORPUS[1], CORPUS[2], CORPUS[0] + " " + CORPUS[1]]

TRAINING = {
    "quantization": "none",
    "device": "cpu",
    "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
    "args": {
        "max_steps": 2,
        "per_device_train_batch_size": 2,
        "learning_rate": 1e-3,
        "max_length": 128,
        "optim": "adamw_torch",
        "bf16": False,
        "save_steps": 100,
        "logging_steps": 1,
    },
}
ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
CPT = {
    "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ALL},
    "args": {"max_steps": 20, "learning_rate": 3e-2, "max_length": 32},
}


def test_corpus_layouts(tmp_path):
    txt = tmp_path / "c.txt"
    txt.write_text("첫째 문서\n\n둘째 문서\n", encoding="utf-8")
    assert read_corpus(txt) == ["첫째 문서", "둘째 문서"]
    jl = tmp_path / "c.jsonl"
    jl.write_text('{"body": "가나다"}\n\n{"body": "라마바"}\n', encoding="utf-8")
    assert read_corpus(jl, "body") == ["가나다", "라마바"]
    with pytest.raises(InputError, match="line 1: no text") as err:
        read_corpus(jl)
    assert "c.jsonl" in str(err.value) and "text" in str(err.value)
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("둘째\n문서는 여러 줄", encoding="utf-8")
    (folder / "sub" / "a.txt").write_text("첫째", encoding="utf-8")
    (folder / "skip.md").write_text("not a document", encoding="utf-8")
    assert read_corpus(folder) == ["둘째\n문서는 여러 줄", "첫째"]
    with pytest.raises(ConfigError, match="does not exist"):
        read_corpus(tmp_path / "absent.txt")
    with pytest.raises(InputError, match=r"\.txt file, a \.jsonl file or a folder"):
        read_corpus(tmp_path / "skip.md" if False else (folder / "skip.md"))
    train_docs, val = split_documents([str(i) for i in range(10)], 0.2, seed=1)
    assert len(val) == 2 and sorted(train_docs + val, key=int) == [str(i) for i in range(10)]
    with pytest.raises(ConfigError, match="fixed by the CPT stage"):
        cpt_settings(TRAINING, {"args": {"completion_only_loss": True}})


def lm_loss(model_dir: str | Path, docs: list[str]) -> float:
    """Mean next-token loss of a plain checkpoint over ``docs`` (each doc + EOS)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    total = n = 0.0
    with torch.no_grad():
        for d in docs:
            ids = torch.tensor([tok(d)["input_ids"] + [tok.eos_token_id]])
            out = model(input_ids=ids, labels=ids)
            k = ids.shape[1] - 1
            total += out.loss.item() * k
            n += k
    return total / n


@pytest.fixture(scope="module")
def chain(tiny_model_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("cpt")
    base_json = write_model_json(tiny_model_dir, work / "model.json")
    corpus = work / "corpus.txt"
    corpus.write_text("\n".join(DOCS) + "\n", encoding="utf-8")
    cpt_dir = work / "cpt"
    summary = train_cpt(
        model_json=str(base_json),
        corpus=str(corpus),
        corpus_name="med",
        corpus_spec={"text_field": "text", "val_fraction": 0.0},
        training=TRAINING,
        cpt=CPT,
        seed=0,
        **train_outputs(cpt_dir, checkpoints=work / "ckpt-cpt"),
    )
    merged = merge_cpt(
        model_json=str(base_json),
        adapter_dir=str(cpt_dir / "adapter"),
        corpus_name="med",
        hf_dir=str(cpt_dir / "merged" / "hf"),
        merged_json=str(cpt_dir / "merged" / "model.json"),
    )
    # SFT: a fresh adapter on the merged model
    items = [
        make_item(
            id=f"q{i}", dataset="qa", task="short", question=f"질문 {i}", answer="정답은 2) 입니다."
        )
        for i in range(4)
    ]
    sft = train(
        model_json=str(Path(cpt_dir / "merged" / "model.json")),
        train_items=items,
        val_items=[],
        formats={"qa": "instruct"},
        training=TRAINING,
        seed=0,
        **train_outputs(work / "sft", checkpoints=work / "ckpt-sft"),
    )
    return work, base_json, cpt_dir, summary, merged, sft


def test_cpt_lowers_lm_loss_on_its_corpus(chain, tiny_model_dir):
    _, _, cpt_dir, summary, merged, _ = chain
    assert summary["stage"] == "cpt" and summary["n_train"] == len(DOCS)
    assert summary["global_steps"] == 20 and summary["lora"] == CPT["lora"]
    assert summary["fixed_settings"]["completion_only_loss"] is False  # loss on every token
    assert summary["args"]["max_length"] == 32  # cpt.args over training.args (128)
    before, after = lm_loss(tiny_model_dir, DOCS), lm_loss(merged["path"], DOCS)
    assert after < before - 0.05, (before, after)  # deterministic: 5.998 -> 5.910 here
    rows = (cpt_dir / "loss.csv").read_text().splitlines()
    first, last = (float(r.split(",")[2]) for r in (rows[1], rows[-1]))
    assert last < first


def test_sft_starts_from_base_plus_cpt_delta(chain, tiny_model_dir):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    work, _, cpt_dir, _, merged, _ = chain
    # the merged weights are the base's plus the CPT LoRA delta (scale * B @ A)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    mw = AutoModelForCausalLM.from_pretrained(merged["path"], dtype=torch.float32)
    ad = load_file(cpt_dir / "adapter" / "adapter_model.safetensors")
    key = next(k for k in ad if "layers.0.self_attn.q_proj.lora_A" in k)
    a, b = ad[key], ad[key.replace("lora_A", "lora_B")]
    scale = CPT["lora"]["alpha"] / CPT["lora"]["r"]
    w0 = base.model.layers[0].self_attn.q_proj.weight
    w1 = mw.model.layers[0].self_attn.q_proj.weight
    assert (w1 - w0).abs().max() > 1e-4
    assert torch.allclose(w1 - w0, scale * (b @ a), atol=1e-5)
    assert torch.equal(base.model.embed_tokens.weight, mw.model.embed_tokens.weight)
    # the SFT stage trained a fresh adapter on the merged model (the fixture)
    sft = chain[5]
    assert sft["model_path"] == merged["path"] and sft["cpt"]["corpus"] == "med"
    cfg = json.loads((work / "sft" / "adapter" / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == merged["path"]
    assert "stage" not in sft and sft["n_train"] == 4


@pytest.mark.slow
def test_workflow_runs_cpt_then_sft_with_filters(repo_root, tiny_model_dir, tmp_path):
    """The DAG: filter -> split; CPT -> merge -> SFT -> generate, on the tiny model."""
    qa = [
        make_item(
            id=f"qa-{i}",
            dataset="qa",
            task="short",
            domain="내과",
            q_type="단답형",
            question=f"{i}번 환자에게 처음 쓰는 해열제는 무엇인가요",
            answer="아세트아미노펜",
        )
        for i in range(20)
    ]
    qa[3].update(question="short English question", answer="acetaminophen")  # Hangul check
    write_jsonl(tmp_path / "qa.jsonl", qa)
    (tmp_path / "corpus.txt").write_text("\n".join(DOCS) + "\n", encoding="utf-8")
    cfg = {
        "study": "cpt-e2e",
        "seed": 42,
        "cpu_threads": 2,
        "datasets": {
            "qa": {
                "loader": "items",
                "path": "qa.jsonl",
                "format": "instruct",
                "split": {"mode": "stratified", "ratios": [0.6, 0.2, 0.2], "strata": ["task"]},
                "filters": [{"hangul": {"min_share": 0.5}}],
            }
        },
        "models": {
            "tiny": {
                "source": "local",
                "id": str(tiny_model_dir),
                "chat_template": "gemma",
                "dtype": "float32",
            }
        },
        "train_sets": {"qa_cpt": {"datasets": ["qa"], "cpt": "med"}},
        "cpt": {
            "corpora": {"med": {"path": "corpus.txt"}},
            "args": {"max_steps": 2, "max_length": 32},
        },
        "training": TRAINING,
        "runs": {"tiny": ["ft-qa_cpt"]},
        "evaluation": {
            "eval_sets": {"qa-test": {"dataset": "qa", "split": "test"}},
            "generation": {"batch_size": 4, "device": "cpu", "max_new_tokens": {"short": 4}},
        },
        "judge": {"backend": "none"},
    }
    targets = [
        "results/generations/tiny/ft-qa_cpt/qa-test.jsonl",
        "paper/tables/data_filters.md",
        "paper/tables/training.md",
    ]
    proc = run_snakemake(repo_root, tmp_path, cfg, *targets, "--cores", "1", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    sft = json.loads((tmp_path / "results/train/tiny/qa_cpt/summary.json").read_text())
    merged = tmp_path / "results/cpt/tiny/med/merged/hf"
    assert Path(sft["model_path"]) == merged.resolve() and sft["cpt"]["corpus"] == "med"
    cpt = json.loads((tmp_path / "results/cpt/tiny/med/summary.json").read_text())
    assert cpt["stage"] == "cpt" and cpt["global_steps"] == 2
    # the fine-tuned run generates on the merged model (Snakemake's record of the job's inputs)
    records = [json.loads(p.read_text()) for p in (tmp_path / ".snakemake/metadata").iterdir()]
    gen = [r for r in records if r.get("rule") == "generate"]
    assert gen and all("results/cpt/tiny/med/merged/model.json" in r["input"] for r in gen)
    rep = json.loads((tmp_path / "results/data/qa/filters.json").read_text())
    assert rep["filters"][0]["dropped_per_source"] == {"qa": 1} and rep["n_kept"] == 19
    n_split = sum(
        len((tmp_path / f"results/data/qa/{s}.jsonl").read_text().splitlines())
        for s in ("train", "val", "test")
    )
    assert n_split == 19
    assert "| qa | qa | 20 | 1 | 19 |" in (tmp_path / "paper/tables/data_filters.md").read_text()
    assert not math.isnan(cpt["train_loss"])
    # both stages in the training table (and the loss figure, one panel each)
    table = (tmp_path / "paper/tables/training.md").read_text(encoding="utf-8")
    assert "|  | tiny:cpt-med | tiny:ft-qa_cpt |" in table
    assert "| stage | CPT on med" in table and "SFT on base + CPT (med) merged |" in table
    assert (tmp_path / "paper/figures/loss_curves.png").stat().st_size > 1000


def test_training_table_and_card_name_the_cpt_stage(chain, tmp_path):
    from kmedqa.hub.card import _body
    from kmedqa.paper.training_tables import training_table

    _, _, _, cpt_summary, _, sft = chain
    t = training_table({"tiny:cpt-med": cpt_summary, "tiny:ft-qa": sft})
    assert t.rows[0] == [
        "stage",
        "CPT on med (causal LM, packed; documents as items)",
        "SFT on base + CPT (med) merged",
    ]
    steps = next(r for r in t.rows if r[0] == "optimizer steps")
    assert steps[1:] == ["20", "2"]
    plain = training_table({"tiny:ft-qa": {**sft, "cpt": None}})
    assert all(r[0] != "stage" for r in plain.rows)  # configs without CPT: today's table
    body = _body(
        model="tiny",
        train_set="qa",
        model_spec={"source": "local", "id": "x"},
        train_summary=sft,
        results={},
        study="s",
        configfile=None,
    )
    assert "continued pre-training LoRA on the corpus `med`" in body
