"""Which runs are compared, per-department intervals, samples, and the paper's renderers."""

from __future__ import annotations

import json

import pytest

from kmedqa.data.sample import sample_items
from kmedqa.errors import ConfigError
from kmedqa.paper.numbers import collect, write_numbers
from kmedqa.paper.stats_tables import significance_table, three_pp_table
from kmedqa.paper.tables import Table, tex_escape
from kmedqa.stats.compare import (
    compare_eval_set,
    comparison_pairs,
    domain_accuracy,
    mean_ci,
    power_report,
)


def test_comparison_pairs():
    assert comparison_pairs(["base", "icl", "ft-a"]) == [
        ("base", "ft-a"),
        ("icl", "ft-a"),
        ("base", "icl"),
    ]
    assert comparison_pairs(["icl", "ft-a", "ft-b"]) == [("icl", "ft-a"), ("icl", "ft-b")]
    assert comparison_pairs(["base"]) == []


def write_scores(path, values, metric="mcq_strict", extra=None):
    with open(path, "w") as fh:
        for i, v in enumerate(values):
            fh.write(
                json.dumps({"id": f"q{i}", metric: v, "rougeL_ko": None, **(extra or {})}) + "\n"
            )
    return str(path)


def test_compare_eval_set_skips_inapplicable_metrics_and_applies_holm(tmp_path):
    base = write_scores(tmp_path / "b.jsonl", [0] * 30 + [1] * 10)
    ft = write_scores(tmp_path / "f.jsonl", [1] * 30 + [1] * 10)
    icl = write_scores(tmp_path / "i.jsonl", [0] * 20 + [1] * 20)
    comps = compare_eval_set(
        "es",
        {("m", "base"): base, ("m", "ft-x"): ft, ("m", "icl"): icl},
        ["mcq_strict", "rougeL_ko"],
        resamples=500,
        seed=1,
    )
    assert {(c["run_a"], c["run_b"]) for c in comps} == {
        ("m:base", "m:ft-x"),
        ("m:icl", "m:ft-x"),
        ("m:base", "m:icl"),
    }
    assert all(c["metric"] == "mcq_strict" for c in comps)  # rougeL_ko is null everywhere: skipped
    big = next(c for c in comps if c["run_a"] == "m:base" and c["run_b"] == "m:ft-x")
    assert big["diff"] == pytest.approx(0.75) and big["p_mcnemar"] < 1e-6
    assert all(c["p_holm"] >= c["p_primary"] for c in comps)


def test_mean_ci_and_domain_accuracy():
    lo, hi = mean_ci([0, 1] * 50, n_resamples=2000, seed=0)
    assert lo < 0.5 < hi and hi - lo < 0.25
    rows = [
        {"domain": "내과", "mcq_strict": 1},
        {"domain": "내과", "mcq_strict": 0},
        {"domain": "산부인과", "mcq_strict": 1},
        {"domain": "산부인과", "mcq_strict": None},
    ]
    out = domain_accuracy({("m:base", "es"): rows})
    assert [(r["domain"], r["n"], r["mean"]) for r in out] == [
        ("내과", 2, 0.5),
        ("산부인과", 1, 1.0),
    ]


def test_sample_items_is_seeded_and_stratified():
    items = [{"id": f"i{k}", "q_type": "객관식" if k % 3 else "단답형"} for k in range(60)]
    a = sample_items(items, n=5, per="q_type", seed=3)
    assert a == sample_items(list(reversed(items)), n=5, per="q_type", seed=3)
    assert sorted(sum(1 for x in a if x["q_type"] == q) for q in ("객관식", "단답형")) == [5, 5]
    assert a != sample_items(items, n=5, per="q_type", seed=4)
    with pytest.raises(ConfigError, match="only 20"):
        sample_items(items, n=30, per="q_type")


def test_tables_render_markdown_and_escaped_latex(tmp_path):
    t = Table("x", "50% of a_b", ["a & b", "c"], rows=[["r_1", 0.5]], notes=["note #1"])
    t.write(tmp_path / "x.tex", tmp_path / "x.md")
    tex = (tmp_path / "x.tex").read_text()
    assert (
        r"50\% of a\_b" in tex
        and r"a \& b" in tex
        and r"r\_1 & 0.500 \\" in tex
        and r"note \#1" in tex
    )
    assert "| r_1 | 0.500 |" in (tmp_path / "x.md").read_text()
    assert tex_escape("<0.001") == r"\textless{}0.001"


def test_three_pp_table_and_numbers(tmp_path):
    power = power_report([])
    t = three_pp_table(power["published_3pp"])
    text = t.markdown()
    assert "| unpaired two-proportion z-test, p | 0.545 |" in text
    assert "0.031" in text  # smallest exact McNemar p (6 fixed, 0 broken)
    comps = []
    nums = collect(
        study="s_1",
        datasets={"d": {"totals": {"train": 8, "val": 1, "test": 1}}},
        summaries=[],
        comparisons=comps,
        power=power,
        trainings={},
    )
    assert (
        nums["threepp.p_unpaired"] == "0.55"
        and nums["data.d.n"] == "10"
        and nums["study"] == r"s\_1"
    )
    write_numbers(str(tmp_path / "n.tex"), nums)
    assert (
        r"\expandafter\def\csname kmnum@threepp.n_needed_20\endcsname{1,742}"
        in (tmp_path / "n.tex").read_text()
    )
    assert "No pairs" in significance_table([]).markdown()
