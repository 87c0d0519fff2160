"""The local judge backend on the tiny randomly initialized model built offline
(``tiny_model_dir``: kmedqa.testing.build_tiny_model).

A random model cannot follow the rubric, so its replies are recorded ``invalid`` with
the raw text: that is the behaviour under test (no score is ever imputed).
"""

from __future__ import annotations

from helpers.judge_fixtures import make_generations, make_items

from kmedqa.io import read_json, read_jsonl
from kmedqa.judge.backends.local import LocalBackend
from kmedqa.judge.run import judge_run


def test_tiny_local_judge_records_invalid(tiny_model_dir, tmp_path):
    items = make_items(with_mcq=False)[:2]
    gens = make_generations(items)
    cfg = {
        "backend": "local",
        "model": str(tiny_model_dir),
        "sample": "all",
        "local": {"max_new_tokens": 6},
    }
    out, summ = tmp_path / "j.jsonl", tmp_path / "s.json"
    summary = judge_run(
        items, gens, cfg, tmp_path / "cache", out, summ
    )  # allow_external not needed
    rows = read_jsonl(out)
    assert summary["status"] == "ok" and summary["judge_backend"] == "local"
    assert summary["judge_model"] == str(tiny_model_dir)
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
