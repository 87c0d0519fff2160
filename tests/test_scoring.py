"""Scoring: the join of items and generations, per-item columns, grouped summaries, CLI."""

import json

import pytest

from kmedqa.cli import main
from kmedqa.errors import InputError
from kmedqa.items import make_item
from kmedqa.metrics.sections import normalize_section, parse_section_output, reference_section
from kmedqa.scoring import METRIC_COLUMNS, ROW_COLUMNS, score_items, summarize

DRUGS = ["인플릭시맙", "에타너셉트", "아달리무맙", "토실리주맙", "리툭시맙"]


def _items():
    mcq_question = "다음 중 TNF 억제제는?\n" + "\n".join(
        f"{i + 1}) {d}" for i, d in enumerate(DRUGS)
    )
    return [
        make_item(id="aihub-1", dataset="aihub71875", task="mcq", domain="내과", q_type="mcq",
                  question=mcq_question, options=DRUGS, answer="3) 아달리무맙", answer_index=2),
        make_item(id="aihub-2", dataset="aihub71875", task="short", domain="소아청소년과",
                  q_type="short", question="가와사키병의 1차 치료제는?",
                  answer="정맥 면역글로불린과 아스피린"),
        make_item(id="kmm-1", dataset="kormedmcqa", task="mcq", domain="doctor", q_type="mcq",
                  question="TNF 억제제는?", options=DRUGS, answer="아달리무맙", answer_index=2),
        make_item(id="mts-1", dataset="mts_dialog", task="section_summary",
                  question="Doctor: Any allergies? Patient: No.",
                  answer="ALLERGY#The patient has no known allergies."),
        make_item(id="mts-2", dataset="mts_dialog", task="section_summary",
                  question="Doctor: What brings you in?", answer="Chest pain.",
                  meta={"section_header": "CC"}),
    ]  # fmt: skip


def _gens():
    return [
        {
            "id": "aihub-1",
            "run": "r",
            "prompt_sha": "x",
            "output": "정답은 3번입니다",
            "n_new_tokens": 6,
        },
        {
            "id": "aihub-2",
            "run": "r",
            "prompt_sha": "x",
            "output": "정맥 면역글로불린",
            "n_new_tokens": 5,
        },
        {"id": "kmm-1", "run": "r", "prompt_sha": "x", "output": " C", "n_new_tokens": 1},
        {
            "id": "mts-1",
            "run": "r",
            "prompt_sha": "x",
            "output": "allergy # The patient has no known allergies.",
            "n_new_tokens": 9,
        },
        {
            "id": "mts-2",
            "run": "r",
            "prompt_sha": "x",
            "output": "GENHX#Chest pain.",
            "n_new_tokens": 4,
        },
    ]


def _write(path, rows):
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return str(path)


def test_rows_have_every_column_and_the_right_metrics():
    rows = {r["id"]: r for r in score_items(_items(), _gens(), eval_set="demo")}
    for row in rows.values():
        assert tuple(sorted(row)) == tuple(sorted(ROW_COLUMNS))
        assert row["eval_set"] == "demo" and row["run"] == "r"

    a1 = rows["aihub-1"]  # number format: right answer, wrong form
    assert (a1["format"], a1["mcq_strict"], a1["mcq_lenient"], a1["format_ok"]) == (
        "aihub",
        0,
        1,
        0,
    )
    assert (a1["strict_choice"], a1["lenient_choice"]) == (None, 2)
    assert a1["rouge1_ko"] is not None and a1["section_correct"] is None  # ROUGE for MCQ too

    k1 = rows["kmm-1"]  # letter format, lm-eval form
    assert (k1["format"], k1["mcq_strict"], k1["mcq_lenient"], k1["format_ok"]) == (
        "kormedmcqa",
        1,
        1,
        1,
    )

    a2 = rows["aihub-2"]
    assert a2["mcq_strict"] is None and a2["format_ok"] is None
    assert a2["lang_hangul_ratio"] == 1.0 and a2["lang_han_ratio"] == 0.0
    assert a2["rouge1_paper"] == 0.0 and a2["rouge1_ko"] > 0.5
    assert a2["n_new_tokens"] == 5

    m1, m2 = rows["mts-1"], rows["mts-2"]
    assert m1["section_correct"] == 1 and m1["summary_rougeL_ko"] == 1.0
    assert m2["section_correct"] == 0 and m2["summary_rouge1_paper"] == 1.0
    # the full output keeps its code: {genhx, chest, pain} vs {chest, pain} -> F = 4/5
    assert m2["rouge1_paper"] == pytest.approx(0.8)


def test_generation_format_overrides_item_meta_and_dataset():
    items = _items()[:1]
    gens = [dict(_gens()[0], output="C", format="kormedmcqa")]
    row = score_items(items, gens)[0]
    assert (row["format"], row["mcq_strict"], row["format_ok"]) == ("kormedmcqa", 1, 1)


def test_mcq_item_with_free_text_format_is_an_error():
    gens = [dict(_gens()[0], format="instruct")]
    with pytest.raises(InputError, match="answer_format"):
        score_items(_items()[:1], gens, file_gens="g.jsonl")


def test_summary_means_by_hand():
    rows = [
        {
            "run": "r",
            "eval_set": "e",
            "q_type": "mcq",
            "domain": "A",
            "mcq_strict": 1,
            "rougeL_ko": 0.5,
        },
        {
            "run": "r",
            "eval_set": "e",
            "q_type": "mcq",
            "domain": "B",
            "mcq_strict": 0,
            "rougeL_ko": 0.1,
        },
        {
            "run": "r",
            "eval_set": "e",
            "q_type": "short",
            "domain": "A",
            "mcq_strict": None,
            "rougeL_ko": 0.3,
        },
        {
            "run": "r",
            "eval_set": "e",
            "q_type": "mcq",
            "domain": "A",
            "mcq_strict": 1,
            "rougeL_ko": 0.9,
        },
    ]
    out = summarize(rows, by=("q_type", "domain"), metrics=("mcq_strict", "rougeL_ko"))
    table = {(g["group"], g["q_type"], g["domain"]): g for g in out}
    assert list(table) == [
        ("overall", None, None),
        ("q_type", "mcq", None),
        ("q_type", "short", None),
        ("domain", None, "A"),
        ("domain", None, "B"),
        ("q_type+domain", "mcq", "A"),
        ("q_type+domain", "mcq", "B"),
        ("q_type+domain", "short", "A"),
    ]
    overall = table[("overall", None, None)]
    assert overall["n"] == 4 and overall["n_mcq_strict"] == 3 and overall["n_rougeL_ko"] == 4
    assert overall["mcq_strict"] == pytest.approx(2 / 3)  # nulls skipped, not counted as 0
    assert overall["rougeL_ko"] == pytest.approx((0.5 + 0.1 + 0.3 + 0.9) / 4)
    assert table[("q_type", "mcq", None)]["rougeL_ko"] == pytest.approx(1.5 / 3)
    assert table[("domain", None, "A")]["mcq_strict"] == pytest.approx(1.0)
    assert table[("domain", None, "A")]["n"] == 3
    short = table[("q_type", "short", None)]
    assert short["mcq_strict"] is None and short["n_mcq_strict"] == 0
    assert table[("q_type+domain", "mcq", "A")]["rougeL_ko"] == pytest.approx(0.7)
    assert all(g["run"] == "r" and g["eval_set"] == "e" for g in out)


def test_summary_keeps_runs_apart():
    rows = [
        {"run": "base", "eval_set": "e", "q_type": "mcq", "domain": "A", "mcq_strict": 0},
        {"run": "ft", "eval_set": "e", "q_type": "mcq", "domain": "A", "mcq_strict": 1},
    ]
    overall = [g for g in summarize(rows, metrics=("mcq_strict",)) if g["group"] == "overall"]
    assert [(g["run"], g["mcq_strict"]) for g in overall] == [("base", 0.0), ("ft", 1.0)]


def test_cli_writes_scores_and_summary(tmp_path, capsys):
    items = _write(tmp_path / "items.jsonl", _items())
    gens = _write(tmp_path / "gens.jsonl", _gens())
    out, summ = tmp_path / "scores.jsonl", tmp_path / "summary.json"
    rc = main(["score", items, gens, "-o", str(out), "--summary", str(summ), "--eval-set", "t"])
    assert rc == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["aihub-1", "aihub-2", "kmm-1", "mts-1", "mts-2"]
    summary = json.loads(summ.read_text(encoding="utf-8"))
    overall = summary[0]
    assert overall["group"] == "overall" and overall["n"] == 5 and overall["eval_set"] == "t"
    assert overall["n_mcq_strict"] == 2 and overall["mcq_strict"] == pytest.approx(0.5)
    assert overall["n_section_correct"] == 2 and overall["section_correct"] == pytest.approx(0.5)
    assert set(METRIC_COLUMNS) <= set(overall)


def _run_cli_error(tmp_path, capsys, gens):
    items = _write(tmp_path / "items.jsonl", _items())
    gpath = _write(tmp_path / "gens.jsonl", gens)
    out = tmp_path / "scores.jsonl"
    with pytest.raises(SystemExit) as exc:
        main(["score", items, gpath, "-o", str(out)])
    assert exc.value.code != 0
    assert not out.exists()
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "gens.jsonl" in err
    return err


def test_cli_missing_generation_names_file_and_id(tmp_path, capsys):
    err = _run_cli_error(tmp_path, capsys, [g for g in _gens() if g["id"] != "kmm-1"])
    assert "item kmm-1" in err and "no generation" in err


def test_cli_extra_generation_names_file_and_id(tmp_path, capsys):
    gens = _gens() + [{"id": "ghost-7", "run": "r", "output": "x", "n_new_tokens": 1}]
    err = _run_cli_error(tmp_path, capsys, gens)
    assert "item ghost-7" in err and "items.jsonl" in err


def test_cli_missing_output_names_the_field(tmp_path, capsys):
    gens = _gens()
    del gens[1]["output"]
    err = _run_cli_error(tmp_path, capsys, gens)
    assert "item aihub-2" in err and "field 'output'" in err


def test_cli_duplicate_generation_is_an_error(tmp_path, capsys):
    err = _run_cli_error(tmp_path, capsys, _gens() + [_gens()[0]])
    assert "item aihub-1" in err and "duplicate" in err


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("GENHX", "genhx"),
        (" FAM/SOCHX ", "fam/sochx"),
        ("fam / sochx", "fam/sochx"),
        ("Past Medical HX", "pastmedicalhx"),
        ("OTHER HISTORY", "other_history"),
        ("other_history", "other_history"),
        ("**CC**", "cc"),
        ("medication", None),  # no singular/plural aliasing
        ("HPI", None),
        ("", None),
    ],
)
def test_normalize_section(code, expected):
    assert normalize_section(code) == expected


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("GENHX#The patient is a 45-year-old man.", ("genhx", "The patient is a 45-year-old man.")),
        ("gen hx # Pain since #2 days", ("genhx", "Pain since #2 days")),
        ("UNKNOWN#text", (None, "text")),
        ("ROS: Negative.", ("ros", "Negative.")),
        ("The patient denies allergies.", (None, "The patient denies allergies.")),
    ],
)
def test_parse_section_output(output, expected):
    assert parse_section_output(output) == expected


def test_reference_section_from_answer_or_meta():
    assert reference_section("CC#Chest pain.") == ("cc", "Chest pain.")
    assert reference_section("Chest pain.", {"section_header": "CC"}) == ("cc", "Chest pain.")
    assert reference_section("CC#Chest pain.", {"section_header": "cc"}) == ("cc", "Chest pain.")
    meta = {"section_header": "cc", "section_text": "Chest pain."}
    assert reference_section("CC#Chest pain.", meta) == ("cc", "Chest pain.")


def test_unrecognized_reference_section_is_an_error():
    item = dict(_items()[3], answer="NOPE#text")
    gen = dict(_gens()[3])
    with pytest.raises(InputError, match="section code") as exc:
        score_items([item], [gen], file_items="items.jsonl")
    assert "items.jsonl" in str(exc.value) and "item mts-1" in str(exc.value)
