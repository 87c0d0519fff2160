"""The two-level (seeds, then items) bootstrap against a brute-force enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from kmedqa.errors import InputError
from kmedqa.stats.seeds import compare_seeded, seed_matrix, two_level_bootstrap

# run A: 2 seeds, run B: 2 seeds, 3 items (0/1 accuracy, as MCQ items)
A = np.array([[1, 0, 0], [1, 1, 0]], float)
B = np.array([[1, 1, 0], [1, 1, 1]], float)


def exact_distribution(a, b):
    """Every equally likely outcome of the two-level bootstrap, enumerated."""
    ka, kb, n = a.shape[0], b.shape[0], a.shape[1]
    out = []
    for sa in itertools.product(range(ka), repeat=ka):
        for sb in itertools.product(range(kb), repeat=kb):
            per_item = b[list(sb)].mean(0) - a[list(sa)].mean(0)
            for items in itertools.product(range(n), repeat=n):
                out.append(per_item[list(items)].mean())
    return np.array(out)


def test_two_level_bootstrap_matches_the_enumerated_distribution():
    exact = exact_distribution(A, B)
    assert exact.size == 4 * 4 * 27
    boot = two_level_bootstrap(A, B, n_resamples=200_000, seed=1)
    assert boot.mean() == pytest.approx(exact.mean(), abs=2e-3)
    assert boot.std() == pytest.approx(exact.std(), rel=0.02)
    # the Monte Carlo CDF agrees with the exact one everywhere on the support
    for x in np.unique(exact):
        assert (boot <= x).mean() == pytest.approx((exact <= x).mean(), abs=5e-3)
    # and a seed-only bootstrap would be narrower than this: items add spread
    assert exact.std() > np.std([B[i].mean() - A[j].mean() for i in range(2) for j in range(2)])


def test_one_seed_each_reduces_to_the_item_bootstrap():
    a, b = A[:1], B[:1]
    exact = exact_distribution(a, b)
    boot = two_level_bootstrap(a, b, n_resamples=100_000, seed=2)
    d = b[0] - a[0]
    items_only = [d[list(ix)].mean() for ix in itertools.product(range(3), repeat=3)]
    assert np.allclose(np.sort(exact), np.sort(items_only))
    assert boot.std() == pytest.approx(np.std(items_only), rel=0.02)


def rows(values, ids=("q1", "q2", "q3")):
    return [{"id": i, "acc": v} for i, v in zip(ids, values, strict=True)]


def test_compare_seeded_reports_per_seed_values_and_both_intervals():
    base = [rows([1, 0, 0])]
    ft = [rows([1, 1, 0]), rows([1, 1, 1]), rows([0, 1, 0])]
    c = compare_seeded(base, ft, "acc", seeds_b=[42, 43, 44], n_resamples=4000)
    assert c["per_seed_b"] == pytest.approx([2 / 3, 1.0, 1 / 3])
    assert c["mean_b"] == pytest.approx(2 / 3) and c["mean_a"] == pytest.approx(1 / 3)
    assert c["sd_b"] == pytest.approx(np.std([2 / 3, 1, 1 / 3], ddof=1))
    assert c["sd_a"] is None and c["diff"] == pytest.approx(1 / 3)
    lo2, hi2 = c["ci_two_level"]
    lo1, hi1 = c["ci_items"]
    assert hi2 - lo2 >= hi1 - lo1  # seed spread widens the interval


def test_seed_matrix_drops_items_null_everywhere_and_rejects_partial_nulls():
    ids, x = seed_matrix([rows([1, None, 0]), rows([0, None, 1])], "acc")
    assert ids == ["q1", "q3"] and x.tolist() == [[1, 0], [0, 1]]
    with pytest.raises(InputError, match="null in this seed only"):
        seed_matrix([rows([1, None, 0]), rows([0, 1, 1])], "acc", ["s42.jsonl", "s43.jsonl"])


def test_tables_say_which_interval_a_claim_rests_on():
    from kmedqa.paper.stats_tables import significance_table, three_pp_table
    from kmedqa.stats.power import published_3pp_question

    base = [rows([1, 0, 0])]
    ft = [rows([1, 1, 0]), rows([1, 1, 1]), rows([0, 1, 0])]
    c = compare_seeded(base, ft, "acc", seeds_a=[42], seeds_b=[42, 43, 44], n_resamples=2000)
    c.update(eval_set="kmmcqa-test", run_a="m:base", run_b="m:ft-x")
    item_row = {
        "eval_set": "kmmcqa-test",
        "metric": "acc",
        "run_a": "m:base",
        "run_b": "m:ft-x",
        "n": 3,
        "mean_a": 1 / 3,
        "mean_b": 2 / 3,
        "diff": 1 / 3,
        "ci": [0.0, 0.67],
    }
    plain = significance_table([item_row]).markdown()
    assert "CI over" not in plain  # no seeds: today's table
    md = significance_table([item_row], [c]).markdown()
    assert "CI over" in md and "items (one training run)" in md
    assert "m:ft-x (3 seeds)" in md and "seeds+items (item-only:" in md
    t = three_pp_table(published_3pp_question(), [c]).markdown()
    assert "per seed [42, 43, 44]" in t and "95% CI over seeds and items" in t
    assert len(three_pp_table(published_3pp_question()).rows) + 4 == len(
        three_pp_table(published_3pp_question(), [c]).rows
    )


def test_seed_report_groups_seeds_and_the_grid_table_marks_the_study(tmp_path):
    import json

    from kmedqa.recipes import plan
    from kmedqa.stats.ablation import ablation_figure, ablation_table, grid_rows, seed_report

    cfg = {
        "seed": 42,
        "seeds": [42, 43],
        "training": {"lora": {"r": 16}},
        "grids": {"rank": {"lora.r": [16, 4]}},
        "runs": {"m": ["base", "ft-x+rank"]},
    }
    p = plan(cfg)
    runs = [("m", v) for v in p.runs["m"]]
    assert [v for _, v in runs] == ["base", "ft-x", "ft-x@s43", "ft-x+r4", "ft-x+r4@s43"]
    values = {
        "base": [0, 0, 1, 0],
        "ft-x": [1, 0, 1, 1],
        "ft-x@s43": [1, 1, 1, 0],
        "ft-x+r4": [0, 1, 1, 0],
        "ft-x+r4@s43": [1, 0, 0, 0],
    }
    files = {}
    for _, v in runs:
        f = tmp_path / f"{v}.jsonl"
        f.write_text(
            "".join(
                json.dumps({"id": f"q{i}", "acc": x, "domain": "내과"}) + "\n"
                for i, x in enumerate(values[v])
            )
        )
        files[("m", v)] = str(f)
    rep = seed_report("es", runs, files, ["acc"], resamples=500, seed=0, config_seed=42)
    groups = {g["run"]: g for g in rep["groups"]}
    assert groups["m:ft-x"]["seeds"] == [42, 43]
    assert groups["m:ft-x"]["per_seed"] == pytest.approx([0.75, 0.75])
    assert groups["m:ft-x+r4"]["mean"] == pytest.approx(0.375)
    pairs = {(c["run_a"], c["run_b"]) for c in rep["comparisons"]}
    assert pairs == {("m:base", "m:ft-x"), ("m:base", "m:ft-x+r4"), ("m:ft-x", "m:ft-x+r4")}
    rows = grid_rows("rank", p.grids["rank"], [("m", "x")], [rep])
    assert [r["labels"]["lora.r"] for r in rows] == ["r16", "r4"]
    assert rows[0]["study"] and rows[0]["diff_vs_study"] is None
    assert rows[1]["diff_vs_study"] == pytest.approx(0.375 - 0.75)
    md = ablation_table("ablation_rank", "rank", rows).markdown()
    assert "r16 ★" in md and "0.750, 0.750" in md
    ablation_figure(rows, str(tmp_path / "fig"))
    assert (tmp_path / "fig.png").stat().st_size > 1000
