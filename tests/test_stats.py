"""Reference checks for kmedqa.stats.paired (independent implementations or scipy)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as sps

from kmedqa import cli
from kmedqa.errors import InputError
from kmedqa.stats.paired import (
    discordant_counts,
    holm,
    mcnemar_exact,
    paired_bootstrap,
    permutation_test_paired,
    two_proportion_test,
)
from kmedqa.stats.paired_files import compare_families, compare_family, compare_paired

# --------------------------------------------------------------------------- McNemar


@pytest.mark.parametrize("b,c", [(6, 0), (0, 6), (3, 10), (10, 10), (25, 40), (1, 100), (7, 8)])
def test_mcnemar_exact_equals_binomtest(b, c):
    expected = sps.binomtest(min(b, c), b + c, 0.5).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_no_discordant_pairs():
    assert mcnemar_exact(0, 0) == 1.0


def test_discordant_counts():
    a = [1, 1, 0, 0, 1, 0, 1]
    b = [1, 0, 1, 1, 1, 0, 0]
    c = discordant_counts(a, b)
    assert (c["b_only_right"], c["a_only_right"]) == (2, 2)
    assert (c["n01"], c["n10"], c["both_right"], c["both_wrong"]) == (2, 2, 2, 1)


# --------------------------------------------------------------------------- bootstrap


def _loop_bootstrap(a, b, R, seed):
    """Plain reference: one index vector per resample, applied to a and b."""
    rng = np.random.default_rng(seed)
    n = len(a)
    out = np.empty(R)
    for r in range(R):
        idx = rng.integers(0, n, size=n)
        out[r] = b[idx].mean() - a[idx].mean()
    return out


def _data(n=60, seed=1):
    rng = np.random.default_rng(seed)
    a = rng.normal(0.5, 0.2, n)
    b = a + rng.exponential(0.1, n) - 0.05  # skewed paired differences
    return a, b


def test_bootstrap_percentile_matches_loop_reference():
    a, b = _data()
    res = paired_bootstrap(a, b, n_resamples=2000, seed=7)
    ref = _loop_bootstrap(a, b, 2000, 7)
    assert res["diff"] == pytest.approx(b.mean() - a.mean())
    assert res["ci"] == pytest.approx(list(np.quantile(ref, [0.025, 0.975])), abs=1e-12)
    le, ge = np.sum(ref <= 0), np.sum(ref >= 0)
    assert res["p_bootstrap"] == pytest.approx(min(1, 2 * min(le + 1, ge + 1) / 2001))


def test_bootstrap_blocks_do_not_change_stream(monkeypatch):
    import kmedqa.stats.paired as st

    a, b = _data(n=50)
    full = paired_bootstrap(a, b, n_resamples=500, seed=3)
    monkeypatch.setattr(st, "_BLOCK_ELEMENTS", 7 * 50)  # 7 resamples per block
    assert paired_bootstrap(a, b, n_resamples=500, seed=3) == full


def test_bootstrap_percentile_close_to_scipy():
    a, b = _data()
    res = paired_bootstrap(a, b, n_resamples=5000, seed=0)
    ref = sps.bootstrap(
        (a, b),
        lambda x, y, axis=-1: y.mean(axis=axis) - x.mean(axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=5000,
        method="percentile",
        rng=np.random.default_rng(123),
    )
    se = (b - a).std(ddof=1) / np.sqrt(len(a))
    assert res["ci"][0] == pytest.approx(ref.confidence_interval.low, abs=0.15 * se)
    assert res["ci"][1] == pytest.approx(ref.confidence_interval.high, abs=0.15 * se)


def test_bca_close_to_scipy_and_differs_from_percentile():
    rng = np.random.default_rng(5)
    a = np.zeros(30)
    b = rng.lognormal(0, 1.2, 30)  # strongly skewed: BCa shifts the interval
    res = paired_bootstrap(a, b, n_resamples=40000, seed=0, method="bca")
    pct = paired_bootstrap(a, b, n_resamples=40000, seed=0, method="percentile")
    ref = sps.bootstrap(
        (b - a,), np.mean, n_resamples=40000, method="BCa", rng=np.random.default_rng(99)
    )
    se = (b - a).std(ddof=1) / np.sqrt(len(a))
    # Monte-Carlo noise is < 0.1 se here; BCa moves the ends by 0.25 and 0.6 se
    assert res["ci"][0] == pytest.approx(ref.confidence_interval.low, abs=0.12 * se)
    assert res["ci"][1] == pytest.approx(ref.confidence_interval.high, abs=0.12 * se)
    assert pct["ci"][0] < res["ci"][0] - 0.15 * se
    assert pct["ci"][1] < res["ci"][1] - 0.4 * se
    # acceleration from the jackknife matches the textbook skewness formula a = skew/(6 sqrt(n))
    d = b - a
    u = d - d.mean()
    a_ref = (u**3).sum() / (6 * ((u**2).sum()) ** 1.5)
    assert res["bca_acceleration"] == pytest.approx(a_ref, rel=1e-9)


def test_bootstrap_degenerate_and_p_definition():
    res = paired_bootstrap([0, 0, 0, 0], [1, 1, 1, 1], n_resamples=100, method="bca")
    assert res["ci"] == [1.0, 1.0]
    assert res["p_bootstrap"] == pytest.approx(2 / 101)
    same = paired_bootstrap([1, 0, 1], [1, 0, 1], n_resamples=100)
    assert same["diff"] == 0 and same["p_bootstrap"] == 1.0


def test_bootstrap_rejects_bad_input():
    with pytest.raises(ValueError):
        paired_bootstrap([1, 2], [1, 2, 3])
    with pytest.raises(ValueError):
        paired_bootstrap([1, 2], [1, 2], method="basic")


# --------------------------------------------------------------------------- permutation


def test_permutation_exact_all_positive():
    a = np.zeros(10)
    b = np.arange(1, 11, dtype=float)
    assert permutation_test_paired(a, b, n_resamples=10000) == 2 / 1024
    # zero differences do not change the exact p
    assert permutation_test_paired(np.zeros(15), np.r_[b, np.zeros(5)]) == 2 / 1024


def test_permutation_monte_carlo_plus_one_correction():
    # 20 positive differences: 2**20 > 1000 resamples, so Monte Carlo; no random
    # sign pattern reaches the observed sum, so p = (0 + 1) / (1000 + 1)
    p = permutation_test_paired(np.zeros(20), np.arange(1, 21.0), n_resamples=1000, seed=0)
    assert p == 1 / 1001


def test_permutation_exact_matches_scipy():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=12), rng.normal(0.4, 1, 12)
    ref = sps.permutation_test(
        (a, b),
        lambda x, y, axis=-1: (y - x).mean(axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=np.inf,
    ).pvalue
    assert permutation_test_paired(a, b, n_resamples=5000) == pytest.approx(ref, rel=1e-9)


def test_permutation_monte_carlo_close_to_exact():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=16), rng.normal(0.5, 1, 16)
    exact = permutation_test_paired(a, b, n_resamples=2**16)
    mc = permutation_test_paired(a, b, n_resamples=10000, seed=1)
    assert mc != exact  # the Monte-Carlo path ran
    assert mc == pytest.approx(exact, abs=4 * np.sqrt(exact * (1 - exact) / 10000) + 1e-4)


def test_permutation_binary_is_sign_test():
    a = np.r_[np.zeros(20), np.ones(8), np.ones(30)]
    b = np.r_[np.ones(20), np.zeros(8), np.ones(30)]
    ref = sps.binomtest(8, 28, 0.5).pvalue  # exact McNemar
    p = permutation_test_paired(a, b, n_resamples=20000, seed=0)
    assert p == pytest.approx(ref, abs=4 * np.sqrt(ref * (1 - ref) / 20000))


# --------------------------------------------------------------------------- Holm


def test_holm_textbook():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    assert holm([]) == []
    with pytest.raises(ValueError):
        holm([0.1, float("nan")])


def test_compare_family_and_families():
    comps = [
        {"metric": "m", "eval_set": "e", "p_mcnemar": 0.01, "p_permutation": 0.2},
        {"metric": "m", "eval_set": "e", "p_mcnemar": 0.04, "p_permutation": 0.3},
        {"metric": "m", "eval_set": "e", "p_mcnemar": None, "p_permutation": 0.03},
    ]
    out = compare_family(comps)
    assert [c["p_holm"] for c in out] == pytest.approx([0.03, 0.06, 0.06])
    assert [c["p_holm_of"] for c in out] == ["p_mcnemar", "p_mcnemar", "p_permutation"]
    assert all(c["family_size"] == 3 for c in out) and "p_holm" not in comps[0]
    with pytest.raises(ValueError, match="metric"):
        compare_family([comps[0], {**comps[1], "metric": "other"}])
    mixed = [comps[0], {**comps[1], "metric": "other"}, comps[2]]
    fam = compare_families(mixed)
    assert [c["family_size"] for c in fam] == [2, 1, 2]
    assert fam[1]["p_holm"] == pytest.approx(0.04)


# --------------------------------------------------------------------------- two proportions


def test_two_proportion_110_vs_116():
    res = two_proportion_test(110, 200, 116, 200)
    table = [[110, 90], [116, 84]]
    chi2_p = sps.chi2_contingency(table, correction=False).pvalue  # = pooled z-test
    assert res["p_z"] == pytest.approx(chi2_p, rel=1e-9)
    assert res["p_z"] == pytest.approx(0.545, abs=0.001)
    assert res["p_fisher"] == pytest.approx(sps.fisher_exact(table).pvalue)
    assert res["p_fisher"] > res["p_z"]


# --------------------------------------------------------------------------- compare_paired


def _rows(values, metric="mcq_strict", prefix="q"):
    return [{"id": f"{prefix}{i}", metric: v} for i, v in enumerate(values)]


def test_compare_paired_binary():
    a = _rows([1, 1, 0, 0, 1, 0, 1, 0, None])
    b = _rows([1, 1, 1, 1, 0, 1, 1, 1, None])
    res = compare_paired(a, list(reversed(b)), "mcq_strict", n_resamples=2000, seed=0)
    assert res["n"] == 8 and res["n_excluded"] == 1
    assert res["mean_a"] == 0.5 and res["mean_b"] == 7 / 8
    assert res["diff"] == pytest.approx(3 / 8)
    assert (res["b_only_right"], res["a_only_right"]) == (4, 1)
    assert res["p_mcnemar"] == pytest.approx(sps.binomtest(1, 5, 0.5).pvalue)
    assert res["permutation_exact"] and res["p_permutation"] == pytest.approx(res["p_mcnemar"])
    assert res["primary_test"] == "mcnemar" and res["p_primary"] == res["p_mcnemar"]
    assert res["ci"][0] <= res["diff"] <= res["ci"][1]
    # row order does not matter
    assert compare_paired(a, b, "mcq_strict", n_resamples=2000, seed=0) == res


def test_compare_paired_continuous_has_no_mcnemar():
    a = _rows([0.1, 0.5, 0.3, 0.2], "rougeL_ko")
    b = _rows([0.2, 0.6, 0.3, 0.4], "rougeL_ko")
    res = compare_paired(a, b, "rougeL_ko", n_resamples=500, ci_method="bca")
    assert not res["binary"] and "p_mcnemar" not in res
    assert res["primary_test"] == "permutation"
    assert res["ci_method"] == "bca"


@pytest.mark.parametrize(
    "rows_b,needles",
    [
        (_rows([1, 0]), ["a.jsonl", "item q2", "missing from b.jsonl"]),  # id only in A
        (_rows([1, 0, 1, 1]), ["b.jsonl", "item q3", "missing from a.jsonl"]),  # id only in B
        ([{"id": "q0"}, {"id": "q1", "mcq_strict": 1}, {"id": "q2", "mcq_strict": 1}],
         ["b.jsonl", "item q0", "field 'mcq_strict'"]),
        (_rows([1, None, 1]), ["b.jsonl", "item q1", "field 'mcq_strict'", "null"]),
        (_rows([1, "x", 1]), ["b.jsonl", "item q1", "field 'mcq_strict'"]),
        (_rows([1, 0, 1]) + _rows([1]), ["b.jsonl", "item q0", "duplicate"]),
    ],
)  # fmt: skip
def test_compare_paired_errors(rows_b, needles):
    with pytest.raises(InputError) as err:
        compare_paired(_rows([1, 0, 1]), rows_b, "mcq_strict", file_a="a.jsonl", file_b="b.jsonl")
    msg = str(err.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg


# --------------------------------------------------------------------------- CLI


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_cli_compare_ok(tmp_path, capsys):
    fa = _write(tmp_path / "A.jsonl", _rows([1, 0, 0, 1, 0, 1]))
    fb = _write(tmp_path / "B.jsonl", _rows([1, 1, 1, 1, 0, 1]))
    out = tmp_path / "out" / "cmp.json"
    rc = cli.main(
        ["compare", fa, fb, "--metric", "mcq_strict", "--resamples", "500", "--seed", "3",
         "--ci-method", "bca", "-o", str(out)]
    )  # fmt: skip
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text(encoding="utf-8"))
    assert printed["n"] == 6 and printed["b_only_right"] == 2 and printed["a_only_right"] == 0
    assert printed["p_mcnemar"] == 0.5 and printed["seed"] == 3 and printed["n_resamples"] == 500
    assert printed["file_a"] == fa and printed["ci_method"] == "bca"


def test_cli_compare_id_in_one_file(tmp_path, capsys):
    fa = _write(tmp_path / "A.jsonl", _rows([1, 0, 0]))
    fb = _write(tmp_path / "B.jsonl", _rows([1, 0, 0]) + [{"id": "extra", "mcq_strict": 1}])
    with pytest.raises(SystemExit) as exc:
        cli.main(["compare", fa, fb, "--metric", "mcq_strict"])
    assert exc.value.code != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert fb in err and "item extra" in err


def test_cli_compare_missing_metric(tmp_path, capsys):
    fa = _write(tmp_path / "A.jsonl", _rows([1, 0, 0]))
    fb = _write(tmp_path / "B.jsonl", _rows([1, 0, 0], metric="mcq_lenient"))
    with pytest.raises(SystemExit) as exc:
        cli.main(["compare", fa, fb, "--metric", "mcq_strict"])
    assert exc.value.code != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert fb in err and "item q0" in err and "field 'mcq_strict'" in err
