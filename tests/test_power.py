"""Reference checks for kmedqa.stats.power."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from kmedqa.stats.power import (
    mcnemar_configurations,
    mcnemar_mde,
    mcnemar_n_required,
    mde_curve,
    power_mcnemar_exact_sim,
    published_3pp_question,
    two_proportion_mde,
    two_proportion_n_required,
)

ZA = sps.norm.ppf(0.975)
ZB = sps.norm.ppf(0.8)


@pytest.mark.parametrize("delta,psi", [(0.03, 0.1), (0.03, 0.2), (0.03, 0.3), (0.1, 0.25)])
def test_mcnemar_n_required_connor(delta, psi):
    n = (ZA * math.sqrt(psi) + ZB * math.sqrt(psi - delta**2)) ** 2 / delta**2
    assert mcnemar_n_required(delta, psi) == math.ceil(n)
    assert mcnemar_n_required(-delta, psi) == math.ceil(n)


def test_mcnemar_n_required_hand_values():
    # +3.0%p at 80% power, alpha 0.05 (worked by hand in the paper's appendix)
    assert [mcnemar_n_required(0.03, p) for p in (0.1, 0.2, 0.3)] == [870, 1742, 2614]
    with pytest.raises(ValueError):
        mcnemar_n_required(0.2, 0.1)  # |delta| cannot exceed the discordance rate


@pytest.mark.parametrize("n,psi", [(200, 0.1), (200, 0.3), (435, 0.2), (5000, 0.05)])
def test_mcnemar_mde_inverts_n_required(n, psi):
    delta = mcnemar_mde(n, psi)
    # plugging the MDE back into Connor's formula gives n back
    n_back = (ZA * math.sqrt(psi) + ZB * math.sqrt(psi - delta**2)) ** 2 / delta**2
    assert n_back == pytest.approx(n, rel=1e-9)
    assert mcnemar_mde(n + 100, psi) < delta


def test_mcnemar_mde_undetectable_is_nan():
    assert math.isnan(mcnemar_mde(20, 0.1))


@pytest.mark.parametrize("delta,psi", [(0.05, 0.2), (0.1, 0.3)])
def test_closed_form_n_gives_about_80_percent_power(delta, psi):
    n = mcnemar_n_required(delta, psi)
    p01, p10 = (psi + delta) / 2, (psi - delta) / 2
    power = power_mcnemar_exact_sim(n, p10, p01, n_sims=4000, seed=0)
    assert power == pytest.approx(0.8, abs=0.05)
    # and clearly less power with half the items
    assert power_mcnemar_exact_sim(n // 2, p10, p01, n_sims=4000, seed=1) < 0.65


def test_two_proportion_n_required_textbook():
    # 0.5 vs 0.6, alpha 0.05 two-sided, power 0.8, no continuity correction: 388 per group
    assert two_proportion_n_required(0.1, 0.5) == 388
    assert two_proportion_n_required(0.03, 0.55) == 4286


def test_two_proportion_mde_inverts_n():
    for n, p in [(200, 0.55), (1000, 0.3)]:
        delta = two_proportion_mde(n, p)
        p2 = p + delta
        pbar = (p + p2) / 2
        num = ZA * math.sqrt(2 * pbar * (1 - pbar)) + ZB * math.sqrt(p * (1 - p) + p2 * (1 - p2))
        assert num**2 / delta**2 == pytest.approx(n, rel=1e-8)


def test_configurations_negative_gap():
    rows = mcnemar_configurations(x_a=8, x_b=5, n=10)
    for r in rows:
        assert r["n01"] - r["n10"] == -3
        assert r["n11"] + r["n10"] == 8 and r["n11"] + r["n01"] == 5
        assert min(r.values()) >= 0 and r["n00"] + r["n01"] + r["n10"] + r["n11"] == 10
    assert [r["n10"] for r in rows] == [3, 4, 5]  # n10 <= min(x_a, n - x_b) = 5


def test_published_3pp_question():
    q = published_3pp_question()
    assert q["diff"] == pytest.approx(0.03)
    # (a) unpaired
    assert q["unpaired"]["p_z"] == pytest.approx(0.5451, abs=1e-4)
    assert q["unpaired"]["p_fisher"] == pytest.approx(
        sps.fisher_exact([[110, 90], [116, 84]]).pvalue
    )
    # (b) every paired table consistent with 110/200 -> 116/200
    cfg = q["paired"]["configurations"]
    assert [c["d"] for c in cfg] == list(range(6, 175, 2))
    assert (q["paired"]["d_min"], q["paired"]["d_max"]) == (6, 174)
    for c in cfg:
        assert c["n01"] - c["n10"] == 6 and c["n11"] + c["n10"] == 110
        assert c["n11"] + c["n01"] == 116 and min(c["n00"], c["n11"]) >= 0
    assert q["paired"]["p_min"] == 0.03125 and q["paired"]["p_min_at"] == {"n10": 0, "n01": 6}
    assert q["paired"]["p_max"] == pytest.approx(sps.binomtest(84, 174, 0.5).pvalue)
    assert q["paired"]["significant"] == [{"n10": 0, "n01": 6}]
    at = {r["p_disc"]: r for r in q["paired"]["at_p_disc"]}
    assert at[0.1]["d"] == 20
    assert at[0.1]["p_mcnemar"] == pytest.approx(sps.binomtest(7, 20, 0.5).pvalue)
    # (c) items needed for +3.0%p at 80% power
    assert [r["n"] for r in q["required_n"]["paired"]] == [870, 1742, 2614]
    assert q["required_n"]["unpaired_per_group"] == 4286
    mde = {r["p_disc"]: r["mde"] for r in q["mde_at_n"]["paired"]}
    assert mde[0.1] == pytest.approx(mcnemar_mde(200, 0.1))
    assert q["mde_at_n"]["unpaired"] > mde[0.3] > mde[0.1] > 0.03


def test_mde_curve():
    rows = mde_curve([50, 200, 1000], [0.1, 0.3], p_base=0.55)
    assert len(rows) == 6 and set(rows[0]) == {"n", "p_disc", "mde_mcnemar", "mde_unpaired"}
    r01 = [r["mde_mcnemar"] for r in rows if r["p_disc"] == 0.1]
    assert r01[0] is None  # 50 items cannot detect anything at 10% discordance
    assert r01[1] > r01[2]
    single = mde_curve([200], 0.2)
    assert single == [{"n": 200, "p_disc": 0.2, "mde_mcnemar": mcnemar_mde(200, 0.2)}]
