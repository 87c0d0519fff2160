"""Power and minimum detectable differences for accuracy comparisons.

Paired design (two runs answer the same ``n`` items): let ``p01`` be the
probability that an item is wrong under A and right under B, ``p10`` the
reverse. The accuracy difference is ``delta = p01 - p10`` and the discordance
rate is ``psi = p01 + p10`` (so ``|delta| <= psi``). The normal approximation to
McNemar's test (Connor 1987) gives the number of items::

    n = (z_{1-alpha/2} sqrt(psi) + z_{power} sqrt(psi - delta**2))**2 / delta**2

Unpaired design (two independent samples of ``n`` items each, base accuracy
``p1`` and ``p2 = p1 + delta``; Fleiss et al. 2003, no continuity correction)::

    n = (z_{1-alpha/2} sqrt(2 pbar qbar) + z_{power} sqrt(p1 q1 + p2 q2))**2 / delta**2

:func:`published_3pp_question` applies both to the "+3.0%p on 200 KorMedMCQA
items" claim and returns everything the paper prints about it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import optimize
from scipy import stats as _sps

from kmedqa.stats.paired import mcnemar_exact, two_proportion_test

__all__ = [
    "mcnemar_n_required",
    "mcnemar_mde",
    "power_mcnemar_exact_sim",
    "two_proportion_n_required",
    "two_proportion_mde",
    "mcnemar_configurations",
    "published_3pp_question",
    "mde_curve",
]


def _z(alpha: float, power: float) -> tuple[float, float]:
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    if not 0.5 <= power < 1:
        raise ValueError("power must be in [0.5, 1)")
    return float(_sps.norm.ppf(1 - alpha / 2)), float(_sps.norm.ppf(power))


def _check_psi(p_disc: float) -> float:
    p_disc = float(p_disc)
    if not 0 < p_disc <= 1:
        raise ValueError("p_disc (the discordance rate) must be in (0, 1]")
    return p_disc


def mcnemar_n_required(delta: float, p_disc: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Items needed to detect an accuracy difference ``delta`` with McNemar's
    test at discordance rate ``p_disc`` (Connor 1987), rounded up."""
    za, zb = _z(alpha, power)
    psi = _check_psi(p_disc)
    delta = abs(float(delta))
    if not 0 < delta <= psi:
        raise ValueError("need 0 < |delta| <= p_disc (delta = p01 - p10, p_disc = p01 + p10)")
    n = (za * math.sqrt(psi) + zb * math.sqrt(psi - delta**2)) ** 2 / delta**2
    return math.ceil(n - 1e-9)


def mcnemar_mde(n: float, p_disc: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable accuracy difference (``|p01 - p10|``) with ``n`` paired
    items at discordance rate ``p_disc``: Connor's formula solved for ``delta``.

    Squaring ``sqrt(n) delta - za sqrt(psi) = zb sqrt(psi - delta^2)`` gives the
    closed form::

        delta = sqrt(psi) (za sqrt(n) + zb sqrt(n + zb^2 - za^2)) / (n + zb^2)

    Returns ``nan`` when that exceeds ``psi``: no difference is detectable,
    because even with every discordant pair favouring B the test has too few.
    """
    za, zb = _z(alpha, power)
    psi = _check_psi(p_disc)
    n = float(n)
    if n <= 0:
        raise ValueError("n must be > 0")
    inner = n + zb**2 - za**2
    if inner < 0:
        return math.nan
    delta = math.sqrt(psi) * (za * math.sqrt(n) + zb * math.sqrt(inner)) / (n + zb**2)
    return delta if delta <= psi else math.nan


def power_mcnemar_exact_sim(
    n: int,
    p10: float,
    p01: float,
    alpha: float = 0.05,
    n_sims: int = 10000,
    seed: int = 0,
) -> float:
    """Simulated power of the *exact* McNemar test (reject when ``p <= alpha``).

    Each simulation draws the paired table of ``n`` items from the multinomial
    ``(p10, p01, 1 - p10 - p01)`` and tests ``n10`` vs ``n01``. Its Monte-Carlo
    standard error is ``sqrt(power (1 - power) / n_sims)``.
    """
    if p10 < 0 or p01 < 0 or p10 + p01 > 1:
        raise ValueError("need p10, p01 >= 0 and p10 + p01 <= 1")
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(int(n), [p10, p01, max(0.0, 1 - p10 - p01)], size=int(n_sims))
    n10, n01 = counts[:, 0], counts[:, 1]
    d = n10 + n01
    p = np.minimum(1.0, 2.0 * _sps.binom.cdf(np.minimum(n10, n01), d, 0.5))
    p[d == 0] = 1.0
    return float(np.mean(p <= alpha))


def two_proportion_n_required(
    delta: float, p_base: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Items *per group* for an unpaired two-proportion z-test to detect
    ``p_base -> p_base + delta`` (pooled variance under H0), rounded up."""
    za, zb = _z(alpha, power)
    p1 = float(p_base)
    p2 = p1 + float(delta)
    if delta == 0 or not (0 < p1 < 1 and 0 < p2 < 1):
        raise ValueError("need delta != 0 and both proportions in (0, 1)")
    pbar = (p1 + p2) / 2
    num = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(num**2 / delta**2 - 1e-9)


def two_proportion_mde(n: float, p_base: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable *increase* over ``p_base`` with ``n`` items per group
    (unpaired z-test), solving the formula above for ``delta`` numerically.
    Returns ``nan`` if even ``p_base -> 1`` is not detectable."""
    za, zb = _z(alpha, power)
    p1 = float(p_base)
    if not 0 < p1 < 1:
        raise ValueError("p_base must be in (0, 1)")
    n = float(n)

    def f(delta: float) -> float:
        p2 = p1 + delta
        pbar = (p1 + p2) / 2
        num = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
        return math.sqrt(n) * delta - num

    hi = 1 - p1
    if f(hi) < 0:
        return math.nan
    return float(optimize.brentq(f, 1e-12, hi, xtol=1e-12))


def mcnemar_configurations(x_a: int, x_b: int, n: int) -> list[dict[str, Any]]:
    """Every paired table consistent with A right on ``x_a`` and B right on
    ``x_b`` of the same ``n`` items, with its exact McNemar p-value.

    With ``n10 = k`` (A right, B wrong): ``n01 = k + (x_b - x_a)``,
    ``n11 = x_a - k``, ``n00 = n - x_b - k``. All four must be >= 0, so
    ``max(0, x_a - x_b) <= k <= min(x_a, n - x_b)``; the number of discordant
    items ``d = 2k + (x_b - x_a)`` then runs from ``|x_b - x_a|`` to its maximum
    in steps of 2.
    """
    x_a, x_b, n = int(x_a), int(x_b), int(n)
    if not (0 <= x_a <= n and 0 <= x_b <= n):
        raise ValueError("need 0 <= x_a, x_b <= n")
    gap = x_b - x_a
    rows = []
    for k in range(max(0, -gap), min(x_a, n - x_b) + 1):
        n10, n01 = k, k + gap
        rows.append(
            {
                "n10": n10,
                "n01": n01,
                "d": n10 + n01,
                "n11": x_a - k,
                "n00": n - x_b - k,
                "p_mcnemar": mcnemar_exact(n01, n10),
            }
        )
    return rows


def published_3pp_question(
    x_a: int = 110,
    x_b: int = 116,
    n: int = 200,
    alpha: float = 0.05,
    power: float = 0.8,
    p_disc_grid: Sequence[float] = (0.1, 0.2, 0.3),
) -> dict[str, Any]:
    """Is "+3.0%p on 200 items" (110 -> 116 correct) evidence of a real gain?

    Returns a JSON-ready dict:

    * ``unpaired``: two-proportion z-test and Fisher exact p (as if the two runs
      had answered different items);
    * ``paired``: all exact McNemar p-values consistent with the totals
      (:func:`mcnemar_configurations`), their min/max, the configurations with
      ``p < alpha``, and the p-value at each plausible discordance rate in
      ``p_disc_grid`` (nearest consistent ``d``);
    * ``required_n``: items needed for +3.0%p at the given power: paired for each
      discordance rate, and per group unpaired at base accuracy ``x_a / n``;
    * ``mde_at_n``: the minimum detectable difference with the ``n`` items at
      hand, for each rate and unpaired.
    """
    delta = (x_b - x_a) / n
    p_base = x_a / n
    unpaired = two_proportion_test(x_a, n, x_b, n)
    configs = mcnemar_configurations(x_a, x_b, n)
    ps = [c["p_mcnemar"] for c in configs]
    i_min, i_max = int(np.argmin(ps)), int(np.argmax(ps))
    significant = [c for c in configs if c["p_mcnemar"] < alpha]

    at_rate = []
    for psi in p_disc_grid:
        target = psi * n
        c = min(configs, key=lambda r, t=target: (abs(r["d"] - t), r["d"]))
        at_rate.append({"p_disc": float(psi), **c})

    required = {
        "delta": delta,
        "alpha": alpha,
        "power": power,
        "paired": [
            {
                "p_disc": float(psi),
                "n": mcnemar_n_required(delta, psi, alpha, power) if abs(delta) <= psi else None,
            }
            for psi in p_disc_grid
        ],
        "unpaired_per_group": two_proportion_n_required(delta, p_base, alpha, power),
        "p_base": p_base,
    }
    mde = {
        "n": n,
        "paired": [
            {"p_disc": float(psi), "mde": _nan_to_none(mcnemar_mde(n, psi, alpha, power))}
            for psi in p_disc_grid
        ],
        "unpaired": _nan_to_none(two_proportion_mde(n, p_base, alpha, power)),
    }
    return {
        "x_a": x_a,
        "x_b": x_b,
        "n": n,
        "acc_a": x_a / n,
        "acc_b": x_b / n,
        "diff": delta,
        "alpha": alpha,
        "unpaired": {
            "z": unpaired["z"],
            "p_z": unpaired["p_z"],
            "p_fisher": unpaired["p_fisher"],
        },
        "paired": {
            "configurations": configs,
            "d_min": configs[0]["d"],
            "d_max": configs[-1]["d"],
            "p_min": ps[i_min],
            "p_min_at": {"n10": configs[i_min]["n10"], "n01": configs[i_min]["n01"]},
            "p_max": ps[i_max],
            "p_max_at": {"n10": configs[i_max]["n10"], "n01": configs[i_max]["n01"]},
            "n_significant": len(significant),
            "significant": [{"n10": c["n10"], "n01": c["n01"]} for c in significant],
            "at_p_disc": at_rate,
        },
        "required_n": required,
        "mde_at_n": mde,
    }


def _nan_to_none(x: float) -> float | None:
    return None if math.isnan(x) else x


def mde_curve(
    ns: Iterable[float],
    p_disc: float | Sequence[float],
    alpha: float = 0.05,
    power: float = 0.8,
    p_base: float | None = None,
) -> list[dict[str, Any]]:
    """Rows ``{n, p_disc, mde_mcnemar[, mde_unpaired]}`` for an MDE-vs-n figure.

    ``p_disc`` may be one rate or several (one curve each); ``mde_unpaired``
    (per group, base accuracy ``p_base``) is added when ``p_base`` is given.
    Undetectable settings give ``None``.
    """
    rates = [float(p_disc)] if np.isscalar(p_disc) else [float(x) for x in p_disc]
    ns = [int(x) if float(x).is_integer() else float(x) for x in ns]
    unpaired = (
        {n: _nan_to_none(two_proportion_mde(n, p_base, alpha, power)) for n in ns}
        if p_base is not None
        else None
    )
    rows = []
    for psi in rates:
        for n in ns:
            row: dict[str, Any] = {
                "n": n,
                "p_disc": psi,
                "mde_mcnemar": _nan_to_none(mcnemar_mde(n, psi, alpha, power)),
            }
            if unpaired is not None:
                row["mde_unpaired"] = unpaired[n]
            rows.append(row)
    return rows
