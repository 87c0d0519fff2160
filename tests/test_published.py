"""Published vs reproduced: the verdict on constructed cases, and every config's block."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kmedqa.errors import ConfigError
from kmedqa.paper.published import (
    INSIDE,
    OUTSIDE,
    check_published,
    needed_scores,
    published_table,
    reproduce,
)
from kmedqa.workflow import validate_config

KEY = ("m", "ft-x", "es")


def rows(values, **labels):
    return [{"id": f"i{i}", "mcq_strict": v, **labels} for i, v in enumerate(values)]


def entry(value, **kw):
    return {
        "run": "m/ft-x",
        "eval_set": "es",
        "metric": "mcq_strict",
        "value": value,
        "source": "Table 1",
        **kw,
    }


def one(e, scores, **kw):
    return reproduce([e], scores, resamples=2000, seed=1, **kw)[0]


def test_inside_the_interval():
    scores = {KEY: rows([1] * 30 + [0] * 70)}  # mean 0.30 on 100 items
    r = one(entry(0.32), scores)
    assert r["verdict"] == INSIDE
    assert r["mean"] == pytest.approx(0.30) and r["n_items"] == 100
    assert r["ci"][0] < 0.30 < r["ci"][1]


def test_outside_the_interval_says_which_side():
    scores = {KEY: rows([1] * 30 + [0] * 70)}
    above = one(entry(0.682), scores)
    assert above["verdict"].startswith(OUTSIDE) and "above" in above["verdict"]
    below = one(entry(0.0), scores)
    assert below["verdict"].startswith(OUTSIDE) and "below" in below["verdict"]


def test_not_comparable_gives_the_reason_and_no_number():
    scores = {KEY: rows([1, 0, 1])}
    r = one(entry(0.5, comparable=False, reason="BLEURT-20 vs BLEURT-large"), scores)
    assert r["verdict"] == "not comparable: BLEURT-20 vs BLEURT-large"
    assert r["mean"] is None and r["ci"] is None


def test_a_run_the_config_lacks_is_not_run_even_if_not_comparable():
    e = entry(0.6, run="gemini-2.5-flash/icl", comparable=False, reason="x")
    r = one(e, {KEY: rows([1, 0])}, runs={("m", "ft-x")})
    assert r["verdict"] == "not run"
    r = one(entry(0.6), {}, runs={("m", "ft-x")})  # configured but no scores for this eval set
    assert r["verdict"] == "not run"


def test_group_and_missing_values():
    scores = {
        KEY: rows([1, 1, 0, 0], domain="내과")
        + rows([0, 0], domain="산부인과")
        + [{"id": "z", "mcq_strict": None, "domain": "내과"}]
    }
    r = one(entry(0.5, group={"domain": "내과"}), scores)
    assert r["n_items"] == 4 and r["mean"] == 0.5
    r = one(entry(0.5, metric="rougeL_paper"), scores)
    assert r["verdict"].startswith("not run: no rougeL_paper")


def test_bca_interval_is_used_when_compare_asks_for_it():
    scores = {KEY: rows([1] * 20 + [0] * 80)}
    p = one(entry(0.2), scores, ci_method="percentile")["ci"]
    b = one(entry(0.2), scores, ci_method="bca")["ci"]
    assert p != b


def test_table_marks_illustrative_numbers_and_counts_verdicts():
    scores = {KEY: rows([1] * 30 + [0] * 70)}
    out = reproduce([entry(0.3), entry(0.9)], scores, resamples=500)
    t = published_table(out, study="demo", illustrative=True)
    md = t.markdown()
    assert "ILLUSTRATIVE" in md
    assert "inside: 1; outside: 1; not comparable: 0; not run: 0" in md
    assert "\\%" not in md and "95\\% CI" in t.latex()


def configs(repo_root: Path):
    return [repo_root / "config.yaml", *sorted((repo_root / "experiments").glob("*.yaml"))]


def test_every_config_block_validates_and_names_its_eval_sets(repo_root):
    seen = {}
    for path in configs(repo_root):
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
        validate_config(cfg, str(repo_root / "schemas" / "config.schema.yaml"))
        seen[path.name] = check_published(cfg)
    assert len(seen["essential_medical.yaml"]) == 20
    assert len(seen["clinical_notes.yaml"]) == 28
    assert len(seen["gemma2_kormedmcqa.yaml"]) == 8
    assert seen["ko_gemma2_9b.yaml"] == []
    by = {
        (r["run"], r["eval_set"], r["metric"], tuple((r.get("group") or {}).items())): r["value"]
        for r in seen["essential_medical.yaml"]
    }
    assert by[("qwen2.5-7b/ft-aihub", "aihub-sample198", "mcq_strict", ())] == 0.682
    assert by[("qwen2.5-7b/base", "kormedmcqa-doctor-sample200", "mcq_strict", ())] == 0.55
    assert (
        by[("qwen2.5-7b/ft-aihub", "aihub-sample198", "rougeL_paper", (("q_type", "객관식"),))]
        == 0.7146
    )
    gemini = [r for r in seen["clinical_notes.yaml"] if r["run"] == "gemini-2.5-flash/icl"]
    assert len(gemini) == 7 and {r["value"] for r in gemini} >= {0.64, 0.608}
    cfg = yaml.safe_load((repo_root / "experiments" / "clinical_notes.yaml").read_text("utf-8"))
    # the Gemini baseline is a run of the study config now: its published numbers are compared
    assert any(m == "gemini-2.5-flash" for m, _, _ in needed_scores(cfg))


def test_unknown_eval_set_and_missing_reason_stop_in_one_line(repo_root):
    cfg = yaml.safe_load((repo_root / "config.yaml").read_text(encoding="utf-8"))
    cfg["published"]["results"][0]["eval_set"] = "nope"
    with pytest.raises(ConfigError, match=r"published.results\[0\].eval_set: unknown eval set"):
        check_published(cfg)
    cfg = yaml.safe_load((repo_root / "config.yaml").read_text(encoding="utf-8"))
    cfg["published"]["results"][0]["comparable"] = False
    with pytest.raises(ConfigError, match="needs a reason"):
        check_published(cfg)
    cfg["published"]["results"][0]["value"] = "68%"
    with pytest.raises(ConfigError, match="published.results.0.value"):
        validate_config(cfg, str(repo_root / "schemas" / "config.schema.yaml"))


def test_a_study_without_numbers_says_so():
    md = published_table([], study="002", note="the project reports no numbers").markdown()
    assert "The config declares no published results: the project reports no numbers." in md
