"""Decontamination: planted 13-gram overlap and near duplicate, clean items, tables, CLI."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from kmedqa.cli import main
from kmedqa.data.decontam import _shingles, decontaminate, make_table, normalize_text
from kmedqa.io import read_json, write_jsonl
from kmedqa.items import make_item

MTS_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mts-dialog"

WORDS = (
    "patient fever cough chest pain dyspnea nausea vomiting abdominal headache dizziness "
    "rash swelling fatigue weight loss appetite insomnia anxiety palpitations syncope edema "
    "hypertension diabetes asthma allergy penicillin aspirin insulin metformin statin warfarin "
    "kidney liver heart lung brain blood urine stool skin bone joint muscle nerve vessel"
).split()


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) + str(rng.randrange(100)) for _ in range(n))


def _item(iid: str, question: str, answer: str = "see the guideline") -> dict:
    return make_item(id=iid, dataset="syn", task="descriptive", question=question, answer=answer)


@pytest.fixture(scope="module")
def synthetic():
    rng = random.Random(7)
    train = [_item(f"tr-{i}", _text(rng, 40), _text(rng, 10)) for i in range(60)]
    source = train[17]["question"].split()
    # 1. a 15-word run of a training question inside otherwise new text, punctuation changed
    planted = _text(rng, 10) + " " + ", ".join(source[5:20]).upper() + "! " + _text(rng, 10)
    # 2. a training question with one character changed in every 10th word: no 13-word run
    #    survives, yet the character 5-gram Jaccard stays high
    words = train[33]["question"].split()
    near = " ".join(w + "x" if i % 10 == 4 else w for i, w in enumerate(words))
    # 3. shares exactly 12 consecutive words (one short of 13) with a training question
    twelve = (
        _text(rng, 10) + " " + " ".join(train[5]["question"].split()[:12]) + " " + _text(rng, 10)
    )
    # 4. answer-side contamination: clean question, training answer copied (13+ words)
    ans_src = train[40]["question"] + " " + train[40]["answer"]
    evals = [
        _item("ev-planted", planted),
        _item("ev-near", near),
        _item("ev-twelve", twelve),
        _item("ev-answer", _text(rng, 12), " ".join(ans_src.split()[-14:])),
    ] + [_item(f"ev-clean-{i}", _text(rng, 40), _text(rng, 10)) for i in range(20)]
    return train, evals


def test_finds_planted_items_only(synthetic):
    train, evals = synthetic
    rep = decontaminate(train, evals)
    by = {(f["eval_id"], f["reason"]): f for f in rep["flagged"]}
    assert set(by) == {
        ("ev-planted", "13-gram"),
        ("ev-near", "near-duplicate"),
        ("ev-answer", "13-gram"),
    }
    assert by[("ev-planted", "13-gram")]["train_id"] == "tr-17"
    assert by[("ev-planted", "13-gram")]["field"] == "question"
    assert by[("ev-planted", "13-gram")]["shared_ngrams"] == 3  # 15 words -> three 13-grams
    assert by[("ev-answer", "13-gram")]["train_id"] == "tr-40"
    assert by[("ev-answer", "13-gram")]["field"] == "question+answer"
    assert by[("ev-near", "near-duplicate")]["train_id"] == "tr-33"
    assert 0.8 <= by[("ev-near", "near-duplicate")]["overlap"] < 1.0
    assert rep["n_eval"] == 24 and rep["n_train"] == 60
    assert (rep["n_flagged_ngram"], rep["n_flagged_near_dup"], rep["n_flagged_any"]) == (2, 1, 3)
    # 12 shared words flag at ngram=12, not at 13
    rep12 = decontaminate(train, evals, ngram=12)
    assert "ev-twelve" in {f["eval_id"] for f in rep12["flagged"]}
    # a stricter near-duplicate threshold drops ev-near
    strict = decontaminate(train, evals, near_dup_threshold=0.99)
    assert strict["n_flagged_near_dup"] == 0


def test_korean_and_normalization():
    q = "생후 3개월 영아가 38도 이상의 발열을 보일 때 가장 먼저 시행해야 할 검사와 처치는 무엇인지 설명하시오"
    train = [_item("tr-ko", q, "혈액 배양과 요검사를 시행한다")]
    evals = [
        _item("ev-ko", "［소아과］ " + q.replace(" ", "  ") + "?"),  # full-width brackets, spacing
        _item(
            "ev-other",
            "성인 환자의 고혈압 1차 약제로 권고되는 약물 계열을 모두 나열하고 각각의 금기를 설명하시오",
        ),
    ]
    rep = decontaminate(train, evals)
    assert {f["eval_id"] for f in rep["flagged"]} == {"ev-ko"}
    assert normalize_text("Ａ，b.\tC！") == "a b c"


def test_near_duplicate_index_is_exact():
    """Prefix filtering must find every pair a brute-force Jaccard finds, with its best score.

    Short strings over a 3-letter alphabet put many pairs right at the thresholds,
    where an off-by-one prefix length would miss some.
    """
    rng = random.Random(5)

    def rand_item(iid: str) -> dict:
        return _item(iid, "".join(rng.choice("abc") for _ in range(rng.randrange(6, 12))))

    train = [rand_item(f"t{i}") for i in range(150)]
    evals = [rand_item(f"e{i}") for i in range(150)]
    shingles = {it["id"]: _shingles(normalize_text(it["question"])) for it in train + evals}
    for thr in (0.5, 0.6, 0.7, 0.8, 1.0):
        truth = {}
        for e in evals:
            es = shingles[e["id"]]
            best = max(len(es & shingles[t["id"]]) / len(es | shingles[t["id"]]) for t in train)
            if best >= thr:
                truth[e["id"]] = round(best, 4)
        rep = decontaminate(train, evals, ngram=50, near_dup_threshold=thr)
        found = {
            f["eval_id"]: f["overlap"] for f in rep["flagged"] if f["reason"] == "near-duplicate"
        }
        assert found == truth, thr
        assert truth  # the data does contain near duplicates at every threshold


def test_make_table(synthetic):
    train, evals = synthetic
    rep = decontaminate(train, evals)
    md, tex = make_table(
        {("syn_train", "syn_eval"): rep, ("empty", "none"): decontaminate(train, [])}
    )
    lines = md.strip().splitlines()
    assert (
        lines[0]
        == "| train set | eval set | n eval | 13-gram overlap | near duplicates | flagged any | % |"
    )
    assert lines[2] == "| syn_train | syn_eval | 24 | 2 | 1 | 3 | 12.5 |"
    assert lines[3] == "| empty | none | 0 | 0 | 0 | 0 | – |"
    assert r"syn\_train & syn\_eval & 24 & 2 & 1 & 3 & 12.5 \\" in tex
    assert r"\%" in tex and r"\toprule" in tex and "–" not in tex


def test_decontam_cli(tmp_path, synthetic):
    train, evals = synthetic
    ft, fe = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    write_jsonl(ft, train)
    write_jsonl(fe, evals)
    out, md, tex = tmp_path / "rep.json", tmp_path / "t.md", tmp_path / "t.tex"
    argv = ["decontam", "--train", f"syn={ft}", "--eval", f"e1={fe}", f"e2={fe}", "-o", str(out)]
    assert main([*argv, "--table-md", str(md), "--table-tex", str(tex)]) == 0
    rep = read_json(out)
    assert [(p["train"], p["eval"]) for p in rep["pairs"]] == [("syn", "e1"), ("syn", "e2")]
    assert all(p["n_flagged_any"] == 3 for p in rep["pairs"])
    assert "| syn | e2 | 24 | 2 | 1 | 3 | 12.5 |" in md.read_text(encoding="utf-8")
    assert tex.read_text(encoding="utf-8").startswith(r"\begin{tabular}")


@pytest.mark.skipif(not MTS_DIR.is_dir(), reason=f"MTS-Dialog not found at {MTS_DIR}")
def test_mtsdialog_train_vs_test():
    from kmedqa.data.mtsdialog import load_mtsdialog

    train = load_mtsdialog(MTS_DIR, split="train")
    test = load_mtsdialog(MTS_DIR, split="test")
    rep = decontaminate(train, test)
    # measured on the released files (commit 3ff08019); many 13-gram hits are stock
    # phrases of the dialogues ("do you have any ... that i should know about patient")
    assert (
        rep["n_eval"],
        rep["n_flagged_ngram"],
        rep["n_flagged_near_dup"],
        rep["n_flagged_any"],
    ) == (
        200,
        21,
        2,
        22,
    )
    near = {f["eval_id"]: f for f in rep["flagged"] if f["reason"] == "near-duplicate"}
    assert near["mtsdialog-test-96"]["train_id"] == "mtsdialog-train-318"


def test_report_is_the_same_under_any_hash_seed(tmp_path, synthetic):
    """The example n-gram of a flagged item once came from a set's iteration order, so two
    runs of the same demo wrote different reports (PYTHONHASHSEED differs per process)."""
    import json
    import os
    import subprocess
    import sys

    train, evals = synthetic
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "eval.jsonl", evals)
    code = (
        "import json, sys\n"
        "from kmedqa.data.decontam import decontaminate\n"
        "from kmedqa.io import read_jsonl\n"
        "r = decontaminate(read_jsonl(sys.argv[1]), read_jsonl(sys.argv[2]))\n"
        "print(json.dumps(r, sort_keys=True))\n"
    )
    outs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        argv = [
            sys.executable,
            "-c",
            code,
            str(tmp_path / "train.jsonl"),
            str(tmp_path / "eval.jsonl"),
        ]
        out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
        assert json.loads(out)["flagged"], "the fixture plants contaminated items"
        outs.add(out)
    assert len(outs) == 1
