"""Merging item sources: exact normalized duplicates, first source wins, report."""

from __future__ import annotations

import json

import pytest

from kmedqa.cli import main
from kmedqa.data.merge import merge_sources
from kmedqa.errors import InputError
from kmedqa.io import read_json, read_jsonl, write_jsonl
from kmedqa.items import make_item


def _item(iid, q, a, options=None, **meta):
    task = "mcq" if options else "descriptive"
    return make_item(
        id=iid,
        dataset=iid.split("-")[0],
        task=task,
        question=q,
        answer=a,
        options=options,
        answer_index=0 if options else None,
        meta=meta,
    )


A = [
    _item("a-1", "What is the first-line drug for HTN?", "A thiazide diuretic."),
    _item("a-2", "고혈압의 1차 약제는?", "티아지드계 이뇨제"),
    _item(
        "a-3", "What is the first-line drug for HTN?", "A thiazide diuretic!"
    ),  # dup of a-1 (punct)
    _item("a-4", "Pick one", "x", options=["x", "y"]),
]
B = [
    _item("b-1", "  what is the FIRST-LINE drug for htn ", "a thiazide  diuretic"),  # dup of a-1
    _item("b-2", "고혈압의 1차 약제는？", "티아지드계 이뇨제."),  # dup of a-2 (full-width ?)
    _item("b-3", "Pick one", "x", options=["x", "z"]),  # other options: not a dup
    _item("b-4", "A new question", "A new answer", origin="web"),
]


def test_merge_dedup_first_source_wins_and_report():
    items, report = merge_sources([("a", A), ("b", B)])
    assert [it["id"] for it in items] == ["a-1", "a-2", "a-4", "b-3", "b-4"]
    assert [it["meta"]["source"] for it in items] == ["a", "a", "a", "b", "b"]
    assert items[-1]["meta"]["origin"] == "web"
    assert "source" not in B[3]["meta"]  # inputs are not mutated
    assert report["order"] == ["a", "b"]
    assert (report["n_input"], report["n_kept"], report["n_dropped"]) == (8, 5, 3)
    assert report["sources"]["a"] == {
        "input": 4,
        "kept": 3,
        "dropped": 1,
        "dropped_duplicate_of": {"a": 1},
    }
    assert report["sources"]["b"] == {
        "input": 4,
        "kept": 2,
        "dropped": 2,
        "dropped_duplicate_of": {"a": 2},
    }
    dups = {d["id"]: (d["duplicate_of"], d["duplicate_of_source"]) for d in report["duplicates"]}
    assert dups == {"a-3": ("a-1", "a"), "b-1": ("a-1", "a"), "b-2": ("a-2", "a")}
    json.dumps(report)  # serializable for the manifest


def test_merge_order_decides_the_winner():
    items, report = merge_sources([("b", B), ("a", A)])
    assert [it["id"] for it in items][:2] == ["b-1", "b-2"]
    # a-3 now duplicates b-1, the first occurrence of its text
    assert report["sources"]["a"]["dropped_duplicate_of"] == {"b": 3}


def test_merge_id_clash_and_duplicate_names():
    clash = [_item("a-1", "Different question", "Different answer")]
    with pytest.raises(InputError) as exc:
        merge_sources([("a", A), ("c", clash)])
    assert "item a-1" in str(exc.value) and "field 'id'" in str(exc.value)
    with pytest.raises(InputError, match="given twice"):
        merge_sources([("a", A), ("a", B)])


def test_merge_cli(tmp_path):
    fa, fb = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_jsonl(fa, A)
    write_jsonl(fb, B)
    out, rep = tmp_path / "m.jsonl", tmp_path / "r.json"
    assert main(["merge", f"a={fa}", f"b={fb}", "-o", str(out), "--report", str(rep)]) == 0
    assert [it["id"] for it in read_jsonl(out)] == ["a-1", "a-2", "a-4", "b-3", "b-4"]
    report = read_json(rep)
    assert report["n_kept"] == 5 and set(report["files"]) == {"a", "b"}


def test_merge_cli_bad_spec(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "merge",
                "no-equals-sign",
                "-o",
                str(tmp_path / "m.jsonl"),
                "--report",
                str(tmp_path / "r.json"),
            ]
        )
    assert exc.value.code == 2
    assert "expected NAME=PATH" in capsys.readouterr().err
