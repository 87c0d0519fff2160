"""Declared data filters (kmedqa.data.filters): exact counts per filter and source, order."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from helpers.workflow import run_snakemake

from kmedqa.data.filters import apply_filters, filters_table, pattern_files
from kmedqa.errors import ConfigError
from kmedqa.items import make_item
from kmedqa.workflow import validate_config

KO = "류마티스 관절염 환자에게 처음 쓰는 약은 무엇인가요 그리고 그 이유는 무엇인가요"


def item(i, source, question, answer="메토트렉세이트를 먼저 씁니다."):
    return make_item(
        id=f"{source}-{i}",
        dataset="merged",
        task="descriptive",
        question=question,
        answer=answer,
        meta={"source": source},
    )


def constructed():
    """Two sources; what each filter must drop is written beside each item."""
    return [
        item(1, "a", KO),  # kept
        item(2, "a", "짧다"),  # length: question < 10
        item(3, "a", "What is the first-line drug for rheumatoid arthritis in adults?"),  # hangul
        item(4, "b", KO + "?"),  # near duplicate of a-1 (punctuation only)
        item(5, "b", "소아 발열 환자에게 해열제로 아세트아미노펜을 쓰는 용량은 얼마인가요"),  # kept
        item(6, "b", "자살 방법을 자세히 알려 주세요 어떤 약을 얼마나 먹어야 하나요"),  # pattern
        item(
            7, "b", "임신 중 복용해도 되는 진통제는 무엇인지 알려 주세요 부탁합니다", "네"
        ),  # len ans
        item(8, "a", "고혈압 환자의 생활 습관 교정에는 무엇이 있는지 설명해 주세요"),  # kept
    ]


FILTERS = [
    {"length": {"question": {"min": 10, "max": 4000}, "answer": {"min": 2}}},
    {"hangul": {"min_share": 0.5, "fields": ["question", "answer"]}},
    {"near_duplicate": {"threshold": 0.8}},
    {
        "patterns": {
            "patterns": ["자살\\s*방법"],
            "fields": ["question", "answer"],
            "ignore_case": True,
        }
    },
]


def test_exact_counts_per_filter_and_source():
    kept, rep = apply_filters(constructed(), FILTERS, dataset="merged")
    assert [it["id"] for it in kept] == ["a-1", "b-5", "a-8"]
    assert rep["n_input"] == 8 and rep["n_kept"] == 3
    assert rep["input_per_source"] == {"a": 4, "b": 4}
    assert rep["kept_per_source"] == {"a": 2, "b": 1}
    got = [
        (f["filter"], f["n_seen"], f["n_dropped"], f["dropped_per_source"]) for f in rep["filters"]
    ]
    assert got == [
        ("length", 8, 2, {"a": 1, "b": 1}),
        ("hangul", 6, 1, {"a": 1}),
        ("near_duplicate", 5, 1, {"b": 1}),
        ("patterns", 4, 1, {"b": 1}),
    ]
    dup = rep["filters"][2]["dropped"][0]
    assert dup["id"] == "b-4" and dup["duplicate_of"] == "a-1" and dup["duplicate_of_source"] == "a"
    assert rep["filters"][3]["dropped"][0]["reason"] == "자살\\s*방법"
    assert {d["id"] for f in rep["filters"] for d in f["dropped"]} == {
        "a-2",
        "a-3",
        "b-4",
        "b-6",
        "b-7",
    }


def test_filters_run_in_the_declared_order():
    """An item both filters would drop is counted by whichever runs first."""
    both = [
        item(1, "a", KO),
        item(2, "a", "What is the first-line drug for RA?", "methotrexate first"),  # short+English
    ]
    length = {"length": {"question": {"min": 40}}}
    hangul = {"hangul": {"min_share": 0.5, "fields": ["question", "answer"]}}
    _, first_len = apply_filters(both, [length, hangul])
    _, first_lang = apply_filters(both, [hangul, length])
    assert [(f["filter"], f["n_dropped"]) for f in first_len["filters"]] == [
        ("length", 1),
        ("hangul", 0),
    ]
    assert [(f["filter"], f["n_dropped"]) for f in first_lang["filters"]] == [
        ("hangul", 1),
        ("length", 0),
    ]
    assert [f["step"] for f in first_lang["filters"]] == [1, 2]


def test_pattern_file_and_bad_patterns(tmp_path):
    pats = tmp_path / "drop.txt"
    pats.write_text("# harmful content\n\n자살\\s*방법\n", encoding="utf-8")
    spec = [{"patterns": {"file": str(pats), "fields": ["question"], "ignore_case": True}}]
    assert pattern_files(spec) == [str(pats)]
    kept, rep = apply_filters(constructed(), spec)
    assert rep["filters"][0]["n_dropped"] == 1 and len(kept) == 7
    pats.write_text("자살(\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"drop.txt line 1: pattern .* is not a valid regex"):
        apply_filters(constructed(), spec)
    with pytest.raises(ConfigError, match="dropped every item"):
        apply_filters(constructed(), [{"length": {"question": {"min": 10_000}}}])


def test_table_has_a_row_per_source_and_a_column_per_filter():
    _, rep = apply_filters(constructed(), FILTERS, dataset="merged")
    t = filters_table([rep])
    assert t.columns[0:3] == ["dataset", "source", "prepared"] and t.columns[-1] == "kept"
    assert t.columns[3].startswith("1. length") and t.columns[6].startswith("4. keyword")
    assert t.rows == [
        ["merged", "a", 4, 1, 1, 0, 0, 2],
        ["merged", "b", 4, 1, 0, 1, 1, 1],
        ["merged", "all", 8, 2, 1, 1, 1, 3],
    ]


def test_schema_fills_defaults_and_rejects_two_keys(repo_root):
    cfg = yaml.safe_load((repo_root / "config.yaml").read_text(encoding="utf-8"))
    schema = str(repo_root / "schemas" / "config.schema.yaml")
    good = copy.deepcopy(cfg)
    good["datasets"]["aihub_demo"]["filters"] = [{"hangul": {}}, {"near_duplicate": {}}]
    validate_config(good, schema)
    assert good["datasets"]["aihub_demo"]["filters"] == [
        {"hangul": {"min_share": 0.5, "fields": ["question", "answer"]}},
        {"near_duplicate": {"threshold": 0.8}},
    ]
    bad = copy.deepcopy(cfg)
    bad["datasets"]["aihub_demo"]["filters"] = [{"hangul": {}, "near_duplicate": {}}]
    with pytest.raises(ConfigError, match="filters"):
        validate_config(bad, schema)


def _dry_run_jobs(repo_root: Path, work: Path, cfg: dict) -> str:
    work.mkdir(parents=True)
    proc = run_snakemake(repo_root, work, cfg, "-n", "--cores", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_unfiltered_config_has_no_filter_step_and_filtered_one_does(repo_root, tmp_path):
    cfg = yaml.safe_load((repo_root / "config.yaml").read_text(encoding="utf-8"))
    plain = _dry_run_jobs(repo_root, tmp_path / "plain", copy.deepcopy(cfg))
    assert "filter_items" not in plain and "paper_data_filters" not in plain
    filtered = copy.deepcopy(cfg)
    filtered["datasets"]["aihub_demo"]["filters"] = [{"near_duplicate": {"threshold": 0.9}}]
    out = _dry_run_jobs(repo_root, tmp_path / "filtered", filtered)
    assert "filter_items" in out and "paper_data_filters" in out
    json.dumps(filtered)  # the config stays plain data
