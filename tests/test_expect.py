"""Counts a study reports are checked against the user's data: warnings, never failures."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

from kmedqa.data.expect import check_expected, check_part
from kmedqa.data.sources import load_dataset_spec
from kmedqa.data.split import write_split
from kmedqa.errors import ConfigError
from kmedqa.io import write_jsonl
from kmedqa.items import make_item
from kmedqa.workflow import validate_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "schemas" / "config.schema.yaml")


def _items(domains: dict[str, int]) -> list[dict]:
    out = []
    for d, n in domains.items():
        for i in range(n):
            q_type = "객관식" if i % 3 else "서술형"
            task = "mcq" if q_type == "객관식" else "descriptive"
            extra = {"options": ["가", "나"], "answer_index": 0} if task == "mcq" else {}
            out.append(make_item(
                id=f"{d}-{i:03d}", dataset="aihub71875", task=task, domain=d, q_type=q_type,
                question=f"질문 {d} {i}", answer="가", **extra,
            ))  # fmt: skip
    return out


def test_check_part_names_each_difference_and_is_silent_when_equal():
    items = _items({"내과": 6, "산부인과": 3})
    assert check_part("items", items, {"n": 9, "domain": {"내과": 6, "산부인과": 3}}) == []
    w = check_part("items", items, {"n": 10, "domain": {"내과": 6, "응급의학과": 2}})
    assert w == [
        "items n: expected 10 (as reported), found 9 (-1)",
        "items domain=응급의학과: expected 2 (as reported), found 0 (-2)",
    ]
    assert check_expected("d", None, {"items": items}) is None


def test_prepare_report_carries_the_warnings_and_does_not_fail(tmp_path, caplog):
    path = tmp_path / "items.jsonl"
    write_jsonl(path, _items({"내과": 6, "산부인과": 3}))
    spec = {
        "loader": "items",
        "path": str(path),
        "format": "aihub",
        "split": {"mode": "stratified"},
        "expect": {"source": "study 001, III.1", "items": {"n": 17280, "domain": {"내과": 6}}},
    }
    with caplog.at_level(logging.WARNING):
        items, report = load_dataset_spec("aihub", spec)
    assert len(items) == 9
    exp = report["expect"]
    assert exp["source"] == "study 001, III.1" and exp["checked"] == ["items"]
    assert exp["ok"] is False
    assert exp["warnings"] == ["items n: expected 17,280 (as reported), found 9 (-17,271)"]
    assert "datasets.aihub.expect: items n" in caplog.text
    ok = load_dataset_spec("aihub", {**spec, "expect": {"items": {"n": 9}}})[1]["expect"]
    assert ok == {"source": None, "checked": ["items"], "ok": True, "warnings": []}
    assert "expect" not in load_dataset_spec("aihub", {**spec, "expect": None})[1]


def test_split_manifest_carries_the_split_warnings(tmp_path):
    items = _items({"내과": 30})
    expect = {"train": {"n": 24}, "val": {"n": 3}, "test": {"n": 4, "q_type": {"객관식": 3}}}
    manifest = write_split(items, tmp_path / "d", expect=expect, name="aihub", seed=42)
    assert manifest["totals"] == {"train": 24, "val": 3, "test": 3}
    assert manifest["expect"]["checked"] == ["train", "val", "test"]
    saved = json.loads((tmp_path / "d" / "manifest.json").read_text(encoding="utf-8"))
    assert saved["expect"]["warnings"] == manifest["expect"]["warnings"]
    assert any(w.startswith("test n: expected 4") for w in manifest["expect"]["warnings"])


def _kmm(i: int, split: str) -> dict:
    return make_item(
        id=f"k{i:02d}-{split}", dataset="kormedmcqa", task="mcq", domain="doctor",
        question=f"문제 {i}", options=["가", "나"], answer="가", answer_index=0,
        meta={"split": split},
    )  # fmt: skip


def test_predefined_split_can_leave_the_fewshot_rows_out(tmp_path):
    items = [_kmm(i, s) for i, s in enumerate(["train"] * 5 + ["dev"] * 3 + ["test"] * 4)]
    items += [_kmm(20 + i, "fewshot") for i in range(2)]
    default = write_split(items, tmp_path / "a", mode="predefined", key="split")
    assert default["totals"] == {"train": 7, "val": 3, "test": 4}  # fewshot -> train
    expect = {"train": {"n": 5}, "val": {"n": 3}, "test": {"n": 4}}
    m = write_split(
        items, tmp_path / "b", mode="predefined", key="split", exclude=["fewshot"], expect=expect
    )
    assert m["totals"] == {"train": 5, "val": 3, "test": 4}
    assert m["excluded"] == {"splits": ["fewshot"], "n": 2}
    assert m["expect"]["ok"] is True


def _study(name: str) -> dict:
    return yaml.safe_load((ROOT / "experiments" / name).read_text(encoding="utf-8"))


def test_study_configs_declare_the_published_counts():
    aihub = _study("essential_medical.yaml")["datasets"]["aihub"]["expect"]
    assert aihub["items"] == {
        "n": 17280,
        "domain": {"내과": 11547, "소아청소년과": 2761, "산부인과": 2250, "응급의학과": 722},
    }
    assert sum(aihub["items"]["domain"].values()) == 17280
    assert aihub["test"] == {"n": 1728, "q_type": {"객관식": 1403, "단답형": 164, "서술형": 161}}
    assert sum(aihub["test"]["q_type"].values()) == 1728
    ds = _study("gemma2_kormedmcqa.yaml")["datasets"]
    kmm = {n: d for n, d in ds.items() if d["loader"] == "kormedmcqa"}
    assert all(d["split"].get("exclude") == ["fewshot"] for d in kmm.values())
    totals = {p: sum(d["expect"][p]["n"] for d in kmm.values()) for p in ("train", "val", "test")}
    assert totals == {"train": 3401, "val": 1059, "test": 3009}  # study 004, Datasets
    tests = {d["exam"]: d["expect"]["test"]["n"] for d in kmm.values()}
    assert tests == {"doctor": 435, "nurse": 878, "dentist": 811, "pharm": 885}


def test_schema_validates_the_expect_block():
    cfg = _study("essential_medical.yaml")
    validate_config(cfg, SCHEMA)
    cfg["datasets"]["aihub"]["expect"]["tests"] = {"n": 1}
    with pytest.raises(ConfigError, match="expect"):
        validate_config(cfg, SCHEMA)
    cfg = _study("essential_medical.yaml")
    cfg["datasets"]["aihub"]["expect"]["test"]["n"] = "many"
    with pytest.raises(ConfigError, match="expect"):
        validate_config(cfg, SCHEMA)
