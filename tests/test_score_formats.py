"""`kmedqa score` on items in the documented schema without meta.format: the format is inferred."""

from __future__ import annotations

import json

import pytest

from kmedqa.scoring import score_items, summarize
from kmedqa.scoring.formats import infer_format, resolve_format


def mcq(iid, question, options, answer, answer_index, **meta):
    return {
        "id": iid,
        "dataset": "mine",
        "task": "mcq",
        "domain": None,
        "q_type": None,
        "question": question,
        "options": options,
        "answer": answer,
        "answer_index": answer_index,
        "meta": meta,
    }


NUMBERED = mcq("n1", "다음 중 옳은 것은?\n1) 가\n2) 나\n3) 다", ["가", "나", "다"], "2) 나", 1)
LETTERED = mcq("l1", "Which one?", ["alpha", "beta", "gamma"], "B", 1)
SHORT = {**NUMBERED, "id": "s1", "task": "short", "options": None, "answer_index": None}


@pytest.mark.parametrize(
    "item, expected",
    [
        (NUMBERED, "mcq_number"),
        ({**NUMBERED, "question": "다음 중 옳은 것은?", "answer": "2) 나"}, "mcq_number"),
        (LETTERED, "mcq_letter"),
        (SHORT, "instruct"),
    ],
)
def test_infer_format(item, expected):
    assert infer_format(item) == expected


def test_resolution_order():
    item = {**LETTERED, "meta": {"format": "kormedmcqa"}}
    assert resolve_format(item, {}) == ("kormedmcqa", "item")
    assert resolve_format(item, {"format": "aihub"}) == ("aihub", "generation")
    assert resolve_format(item, {"format": "aihub"}, "mcq_letter") == ("mcq_letter", "override")
    assert resolve_format({**LETTERED, "dataset": "kormedmcqa"}, {}) == ("kormedmcqa", "dataset")
    assert resolve_format(LETTERED, {}) == ("mcq_letter", "inferred")


def test_score_items_without_meta_format_and_summary_says_so():
    gens = [
        {"id": "n1", "run": "r", "output": "2) 나"},
        {"id": "l1", "run": "r", "output": "B"},
        {"id": "s1", "run": "r", "output": "나"},
    ]
    rows = score_items([NUMBERED, LETTERED, SHORT], gens)
    by_id = {r["id"]: r for r in rows}
    assert by_id["n1"]["mcq_strict"] == 1 and by_id["n1"]["format"] == "mcq_number"
    assert by_id["l1"]["mcq_strict"] == 1 and by_id["l1"]["format"] == "mcq_letter"
    assert {r["format_source"] for r in rows} == {"inferred"}
    overall = next(s for s in summarize(rows) if s["group"] == "overall")
    assert overall["formats"] == {
        "instruct (inferred)": 1,
        "mcq_letter (inferred)": 1,
        "mcq_number (inferred)": 1,
    }


def test_cli_score_infers_and_format_overrides(tmp_path, capsys):
    from helpers.cli import run_cli

    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps(LETTERED, ensure_ascii=False) + "\n", encoding="utf-8")
    gens = tmp_path / "gens.jsonl"
    gens.write_text(json.dumps({"id": "l1", "run": "r", "output": "2) beta"}) + "\n")
    out = tmp_path / "scores.jsonl"
    rc, stdout, _ = run_cli(["score", items, gens, "-o", out], capsys)
    assert rc == 0 and "format: mcq_letter (inferred) for 1 items" in stdout
    assert json.loads(out.read_text())["mcq_strict"] == 0  # "2) beta" is no letter
    rc, stdout, _ = run_cli(["score", items, gens, "-o", out, "--format", "mcq_number"], capsys)
    row = json.loads(out.read_text())
    assert rc == 0 and row["mcq_strict"] == 1 and row["format_source"] == "override"
