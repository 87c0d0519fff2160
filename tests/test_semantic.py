"""BERTScore / BLEURT of section summaries and the clinical-notes aggregate, on tiny models.

The models are random BERTs built offline (kmedqa.testing), so the values mean nothing; the
tests check that the right texts reach the right model in the right order and layer, by
recomputing BERTScore's greedy matching and BLEURT's (reference, candidate) logit by hand.
"""

import json

import pytest
import torch
from test_scoring import _gens, _items, _write
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from kmedqa.cli import main
from kmedqa.errors import ConfigError, InputError
from kmedqa.metrics.semantic import (
    SEMANTIC_COLUMNS,
    aggregate,
    bertscore,
    bleurt,
    load_bleurt,
    scoring_settings,
    semantic_scores,
)
from kmedqa.scoring import add_semantic_scores, score_items, summarize
from kmedqa.testing import build_tiny_bert

CANDS = ["the patient reports chest pain", "she denies fever", "metformin daily"]
REFS = ["patient reports chest pain since yesterday", "she denies fever and cough", "no drugs"]


def _greedy_bertscore(model_dir, layer, cand, ref):
    """BERTScore (no idf) by hand: cosine greedy matching of one layer's embeddings.

    As in bert-score, [CLS]/[SEP] take part in the matching but get weight 0 in the means.
    """
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()

    def emb(text):
        enc = tok(text, return_tensors="pt")
        with torch.no_grad():
            h = model(**enc, output_hidden_states=True).hidden_states[layer][0]
        return h / h.norm(dim=-1, keepdim=True)

    sim = emb(cand) @ emb(ref).T
    p = sim.max(dim=1).values[1:-1].mean().item()
    rec = sim.max(dim=0).values[1:-1].mean().item()
    return p, rec, 2 * p * rec / (p + rec)


def _bs_settings(model_dir, layers=2):
    return scoring_settings({"bertscore": {"model": str(model_dir), "num_layers": layers}})[
        "bertscore"
    ]


def test_bertscore_is_greedy_matching_of_the_configured_layer(tiny_bert_dir):
    scores, hash_code = bertscore(CANDS, REFS, _bs_settings(tiny_bert_dir, 2), "cpu")
    assert "L2_no-idf" in hash_code
    for (p, r, f), cand, ref in zip(scores, CANDS, REFS, strict=True):
        ep, er, ef = _greedy_bertscore(tiny_bert_dir, 2, cand, ref)
        assert p == pytest.approx(ep, abs=1e-4)
        assert r == pytest.approx(er, abs=1e-4)
        assert f == pytest.approx(ef, abs=1e-4)
    # another layer gives other numbers: the layer is really passed through
    other, _ = bertscore(CANDS, REFS, _bs_settings(tiny_bert_dir, 1), "cpu")
    assert other[0][2] != pytest.approx(scores[0][2], abs=1e-4)


def test_bertscore_of_identical_texts_is_one(tiny_bert_dir):
    scores, _ = bertscore(REFS, REFS, _bs_settings(tiny_bert_dir), "cpu")
    for p, r, f in scores:
        assert (p, r, f) == pytest.approx((1.0, 1.0, 1.0), abs=1e-5)


def test_bertscore_needs_a_layer_for_models_bert_score_does_not_know(tiny_bert_dir):
    with pytest.raises(ConfigError, match="num_layers"):
        bertscore(CANDS, REFS, _bs_settings(tiny_bert_dir, None), "cpu")


def test_bleurt_is_the_first_logit_of_reference_then_candidate(tiny_bleurt_dir):
    settings = scoring_settings({"bleurt": str(tiny_bleurt_dir)})["bleurt"]
    got = bleurt(CANDS, REFS, {**settings, "batch_size": 2}, "cpu")
    tok = AutoTokenizer.from_pretrained(tiny_bleurt_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bleurt_dir).eval()
    with torch.no_grad():
        for value, cand, ref in zip(got, CANDS, REFS, strict=True):
            expect = model(**tok(ref, cand, return_tensors="pt")).logits[0, 0].item()
            swapped = model(**tok(cand, ref, return_tensors="pt")).logits[0, 0].item()
            assert value == pytest.approx(expect, abs=1e-4)  # batching + padding change nothing
            assert abs(value - swapped) > 1e-3  # and the order is reference, then candidate


def test_bleurt_rejects_classifiers_and_bleurt20_ports(tiny_bert_dir, tmp_path):
    with pytest.raises(ConfigError, match="one"):  # BertModel config: 2 labels by default
        load_bleurt(str(tiny_bert_dir), "cpu")
    port = tmp_path / "bleurt20"
    port.mkdir()
    (port / "config.json").write_text(json.dumps({"model_type": "bleurt"}))
    with pytest.raises(ConfigError, match="bleurt-pytorch"):
        load_bleurt(str(port), "cpu")


def test_settings_absent_model_means_not_run():
    s = scoring_settings({"bertscore": {"model": None}, "bleurt": {}})
    assert s["bertscore"] is None and s["bleurt"] is None
    s = scoring_settings({"bertscore": "roberta-large"})
    assert s["bertscore"]["model"] == "roberta-large" and s["bertscore"]["idf"] is False


def _semantic(tiny_bert_dir, tiny_bleurt_dir):
    cfg = {
        "device": "cpu",
        "bertscore": {"model": str(tiny_bert_dir), "num_layers": 2},
        "bleurt": {"model": str(tiny_bleurt_dir)},
    }
    return semantic_scores(_items(), {g["id"]: g["output"] for g in _gens()}, cfg)


def test_semantic_scores_cover_section_items_only_on_the_summary(tiny_bert_dir, tiny_bleurt_dir):
    rows, meta = _semantic(tiny_bert_dir, tiny_bleurt_dir)
    assert [r["id"] for r in rows] == ["mts-1", "mts-2"]
    assert meta["n_items"] == 2 and meta["bertscore"]["num_layers"] == 2
    assert meta["bleurt"]["model"] == str(tiny_bleurt_dir)
    # both summaries after the code ("allergy #", "GENHX#") equal the reference summaries:
    # only the summary is scored, not the code (the whole outputs would score below 1)
    for row in rows:
        assert row["summary_bertscore_f1"] == pytest.approx(1.0, abs=1e-5)
    whole, _ = bertscore(["GENHX#Chest pain."], ["Chest pain."], _bs_settings(tiny_bert_dir), "cpu")
    assert whole[0][2] < 0.999


def test_semantic_columns_join_and_aggregate(tiny_bert_dir, tiny_bleurt_dir):
    semantic, _ = _semantic(tiny_bert_dir, tiny_bleurt_dir)
    rows = {r["id"]: r for r in score_items(_items(), _gens(), eval_set="t", semantic=semantic)}
    for c in SEMANTIC_COLUMNS:
        assert rows["aihub-1"][c] is None  # not a section item: null, not zero
        assert rows["mts-2"][c] is not None
    m2 = rows["mts-2"]
    expect = (m2["summary_rouge1_paper"] + m2["summary_bertscore_f1"] + m2["summary_bleurt"]) / 3
    assert m2["summary_aggregate"] == pytest.approx(expect)
    summ = [s for s in summarize(list(rows.values())) if s["group"] == "overall"][0]
    assert summ["n_summary_bleurt"] == 2
    mean = (rows["mts-1"]["summary_aggregate"] + m2["summary_aggregate"]) / 2
    assert summ["summary_aggregate"] == pytest.approx(mean)


def test_without_semantic_scores_the_columns_are_absent():
    rows = score_items(_items(), _gens())
    assert not any(c in r for r in rows for c in SEMANTIC_COLUMNS)
    summ = summarize(rows)
    assert not any(c in s for s in summ for c in SEMANTIC_COLUMNS)


def test_only_bertscore_gives_no_aggregate(tiny_bert_dir):
    cfg = {"device": "cpu", "bertscore": {"model": str(tiny_bert_dir), "num_layers": 2}}
    semantic, meta = semantic_scores(_items(), {g["id"]: g["output"] for g in _gens()}, cfg)
    assert meta["bleurt"] is None
    rows = score_items(_items(), _gens(), semantic=semantic)
    assert all("summary_bleurt" not in r and "summary_aggregate" not in r for r in rows)
    assert aggregate({"summary_rouge1_paper": 0.5, "summary_bertscore_f1": 0.9}) is None


def test_semantic_join_errors_name_the_file_and_id():
    rows = score_items(_items(), _gens())
    with pytest.raises(InputError, match="sem.jsonl: item mts-2: no BERTScore"):
        add_semantic_scores(rows, [{"id": "mts-1", "summary_bleurt": 0.1}], "sem.jsonl")
    rows = score_items(_items(), _gens())
    with pytest.raises(InputError, match="item aihub-1: semantic scores for an id"):
        add_semantic_scores(rows, [{"id": "aihub-1", "summary_bleurt": 0.1}], "sem.jsonl")
    rows = score_items(_items(), _gens())
    bad = [{"id": "mts-1", "summary_bleurt": "high"}, {"id": "mts-2", "summary_bleurt": 0.2}]
    with pytest.raises(InputError, match="field 'summary_bleurt': must be a number"):
        add_semantic_scores(rows, bad, "sem.jsonl")


def test_cli_scores_with_configured_models(tmp_path, capsys, tiny_bert_dir, tiny_bleurt_dir):
    items = _write(tmp_path / "items.jsonl", _items())
    gens = _write(tmp_path / "gens.jsonl", _gens())
    out = tmp_path / "scores.jsonl"
    argv = ["score", items, gens, "-o", str(out), "--device", "cpu"]
    argv += ["--bertscore-model", str(tiny_bert_dir), "--bertscore-layers", "2"]
    assert main([*argv, "--bleurt-model", str(tiny_bleurt_dir)]) == 0
    assert "bertscore: " in capsys.readouterr().out
    rows = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows["mts-1"]["summary_aggregate"] is not None
    assert rows["kmm-1"]["summary_bertscore_f1"] is None


def test_bleurt_truncates_pairs_longer_than_the_model(tiny_bleurt_dir):
    settings = scoring_settings({"bleurt": {"model": str(tiny_bleurt_dir)}})["bleurt"]
    long = " ".join(["the patient reports chest pain"] * 60)  # > 128 positions
    (value,) = bleurt([long], [long], settings, "cpu")
    assert value == value  # a number, not an index error


def test_bertscore_of_short_answers_beside_rouge_when_configured(tiny_bert_dir):
    """bertscore.tasks [short, descriptive]: the free-text answer against the reference."""
    from kmedqa.metrics.semantic import ANSWER_BERTSCORE_COLUMNS

    items = _items()
    outputs = {g["id"]: g["output"] for g in _gens()}
    cfg = {
        "device": "cpu",
        "bertscore": {"model": str(tiny_bert_dir), "num_layers": 2, "tasks": ["short"]},
    }
    semantic, meta = semantic_scores(items, outputs, cfg)
    assert meta["n_items"] == 0 and meta["n_answers"] == 1  # aihub-2 is the one short item
    (row,) = semantic
    short = next(it for it in items if it["id"] == "aihub-2")
    p, r, f = _greedy_bertscore(tiny_bert_dir, 2, outputs["aihub-2"].strip(), short["answer"])
    assert row["id"] == "aihub-2"
    assert row["answer_bertscore_f1"] == pytest.approx(f, abs=1e-4)
    assert row["answer_bertscore_p"] == pytest.approx(p, abs=1e-4)
    scored = {x["id"]: x for x in score_items(items, _gens(), semantic=semantic)}
    assert scored["aihub-2"]["answer_bertscore_f1"] == pytest.approx(f, abs=1e-4)
    assert scored["aihub-2"]["rougeL_ko"] is not None  # beside ROUGE ko
    assert scored["aihub-1"]["answer_bertscore_f1"] is None  # an MCQ item: not scored
    assert not any(c in scored["mts-1"] and scored["mts-1"][c] for c in ANSWER_BERTSCORE_COLUMNS)
    # the default scores section summaries only (today's behaviour)
    default, _ = semantic_scores(
        items,
        outputs,
        {"device": "cpu", "bertscore": cfg["bertscore"] | {"tasks": ["section_summary"]}},
    )
    assert [x["id"] for x in default] == ["mts-1", "mts-2"]


def test_tiny_bert_builds_the_same_files_every_time(tmp_path):
    a, b = (build_tiny_bert(tmp_path / n, num_labels=1, seed=1) for n in "ab")
    for name in ("tokenizer.json", "model.safetensors"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
