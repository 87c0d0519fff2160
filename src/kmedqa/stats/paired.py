"""Paired significance tests for comparing two runs on the same eval items.

Everything here compares run **A** (the reference, e.g. the base model) with run
**B** (e.g. the fine-tuned model) on the *same* items, so the tests are paired:

* :func:`paired_bootstrap` — mean difference ``mean(B) - mean(A)`` with a
  percentile or BCa confidence interval, resampling items (one shared index
  vector for A and B per resample).
* :func:`permutation_test_paired` — sign-flip permutation test of the mean
  paired difference (exact enumeration when the number of non-zero differences
  is small).
* :func:`mcnemar_exact` — exact McNemar test for 0/1 metrics (binomial test on
  the discordant pairs).
* :func:`holm` — Holm step-down adjustment within a *family* of comparisons
  (:func:`kmedqa.stats.paired_files.compare_family`).
* :func:`two_proportion_test` — the *unpaired* z-test and Fisher's exact test,
  for when only the two accuracies are known (e.g. a published table).

:func:`kmedqa.stats.paired_files.compare_paired` joins two per-item score files on
``id`` and runs all of the above for one metric; ``kmedqa compare``
(:mod:`kmedqa.stats.cli`) is its command-line face.

Conventions
-----------
* ``diff`` is always ``B - A``; a positive value means B is better on a
  higher-is-better metric.
* Every p-value is two-sided.
* Monte-Carlo p-values use the "+1" correction ``(1 + #extreme) / (1 + R)``
  (Davison & Hinkley 1997; Phipson & Smyth 2010) so they are never 0.
* All randomness comes from ``numpy.random.default_rng(seed)``: the same inputs
  and seed give the same numbers, byte for byte.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats as _sps
from scipy.special import ndtr, ndtri

__all__ = [
    "paired_bootstrap",
    "permutation_test_paired",
    "mcnemar_exact",
    "discordant_counts",
    "holm",
    "sign_flip_p",
    "two_proportion_test",
]

# Resampling works on blocks of at most this many array elements (~16 MB of
# int64 indices), so memory stays flat however many items or resamples.
_BLOCK_ELEMENTS = 1 << 21


# --------------------------------------------------------------------------- helpers


def _as_pair(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError("a and b must be one-dimensional")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same length (got {a.size} and {b.size})")
    if a.size == 0:
        raise ValueError("need at least one paired item")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("a and b must be finite numbers")
    return a, b


def check_resamples(n_resamples: int) -> int:
    n_resamples = int(n_resamples)
    if n_resamples < 1:
        raise ValueError("n_resamples must be >= 1")
    return n_resamples


def _bootstrap_means(d: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_resamples`` bootstrap resamples of ``d`` (rows drawn in order).

    Resample ``r`` uses ``rng.integers(0, n, size=n)`` drawn in sequence, so the
    result equals a plain loop ``for r in range(R): d[rng.integers(0, n, n)].mean()``
    (blocking does not change the random stream).
    """
    n = d.size
    out = np.empty(n_resamples)
    rows = max(1, _BLOCK_ELEMENTS // n)
    for start in range(0, n_resamples, rows):
        stop = min(n_resamples, start + rows)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = d[idx].mean(axis=1)
    return out


def _bca_levels(d: np.ndarray, theta_hat: float, boot: np.ndarray, alpha: float):
    """BCa-adjusted lower/upper quantile levels (Efron & Tibshirani 1993, 14.3).

    ``z0`` uses the mid-rank proportion of bootstrap means below ``theta_hat``
    (ties count one half, as scipy does); the acceleration ``a`` comes from the
    jackknife of the mean, which has the closed form
    ``theta_(i) = (sum(d) - d_i) / (n - 1)``.
    """
    n = d.size
    B = boot.size
    prop = (np.count_nonzero(boot < theta_hat) + np.count_nonzero(boot <= theta_hat)) / (2 * B)
    z0 = float(ndtri(prop))
    if n > 1:
        jack = (d.sum() - d) / (n - 1)
        u = jack.mean() - jack
        den = float((u**2).sum())
        a_hat = float((u**3).sum()) / (6.0 * den**1.5) if den > 0 else 0.0
    else:
        a_hat = 0.0
    z_lo, z_hi = ndtri(alpha), ndtri(1 - alpha)
    lo = ndtr(z0 + (z0 + z_lo) / (1 - a_hat * (z0 + z_lo)))
    hi = ndtr(z0 + (z0 + z_hi) / (1 - a_hat * (z0 + z_hi)))
    return float(lo), float(hi), a_hat, z0


# --------------------------------------------------------------------------- tests


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    n_resamples: int = 10000,
    seed: int = 0,
    ci: float = 0.95,
    method: str = "percentile",
) -> dict[str, Any]:
    """Paired bootstrap of ``mean(b) - mean(a)``.

    Each resample draws ``n`` item indices with replacement and applies the same
    indices to ``a`` and ``b`` (so the statistic is the mean of the resampled
    paired differences ``d = b - a``).

    ``method="percentile"`` gives the ``(1-ci)/2`` and ``(1+ci)/2`` quantiles
    of the bootstrap means (linear interpolation, as numpy/scipy). ``"bca"``
    gives the bias-corrected and accelerated interval (jackknife acceleration).
    If every bootstrap mean is identical (e.g. all differences equal) both
    methods return ``[diff, diff]``.

    ``p_bootstrap`` is the two-sided bootstrap p-value obtained by inverting the
    percentile interval::

        p = min(1, 2 * min((1 + #{d* <= 0}) / (1 + R), (1 + #{d* >= 0}) / (1 + R)))

    i.e. (up to the +1 correction) the smallest ``1 - ci`` at which the
    equal-tailed percentile interval excludes 0. It is a descriptive companion to
    the CI; the permutation and McNemar tests are the proper null-hypothesis
    tests.
    """
    a, b = _as_pair(a, b)
    n_resamples = check_resamples(n_resamples)
    if not 0 < ci < 1:
        raise ValueError("ci must be in (0, 1)")
    if method not in ("percentile", "bca"):
        raise ValueError(f"method must be 'percentile' or 'bca', not {method!r}")
    d = b - a
    theta_hat = float(d.mean())
    rng = np.random.default_rng(seed)
    boot = _bootstrap_means(d, n_resamples, rng)

    alpha = (1 - ci) / 2
    out: dict[str, Any] = {"diff": theta_hat}
    if np.ptp(boot) == 0:
        lo_hi = [float(boot[0]), float(boot[0])]
    elif method == "percentile":
        lo_hi = [float(x) for x in np.quantile(boot, [alpha, 1 - alpha])]
    else:
        lo_q, hi_q, a_hat, z0 = _bca_levels(d, theta_hat, boot, alpha)
        if not (np.isfinite(lo_q) and np.isfinite(hi_q)):
            raise ValueError("BCa interval is undefined for these data (degenerate bootstrap)")
        lo_hi = [float(x) for x in np.quantile(boot, [lo_q, hi_q])]
        out["bca_acceleration"] = a_hat
        out["bca_z0"] = z0
    out["ci"] = lo_hi
    le = np.count_nonzero(boot <= 0)
    ge = np.count_nonzero(boot >= 0)
    out["p_bootstrap"] = min(1.0, 2 * min(le + 1, ge + 1) / (n_resamples + 1))
    return out


def sign_flip_p(d: np.ndarray, n_resamples: int, seed: int) -> tuple[float, bool]:
    """Sign-flip permutation p of the paired differences ``d`` and whether it is exact
    (see :func:`permutation_test_paired`)."""
    d = d[d != 0]  # a zero difference is the same under either sign
    m = d.size
    if m == 0:
        return 1.0, True
    t_obs = abs(d.sum())
    tol = 1e-9 * np.abs(d).sum()  # float round-off in the sums must not break ties
    if m < 63 and 2**m <= n_resamples:
        codes = np.arange(2**m, dtype=np.int64)[:, None] >> np.arange(m, dtype=np.int64)
        signs = 1.0 - 2.0 * (codes & 1)
        t = np.abs(signs @ d)
        return float(np.count_nonzero(t >= t_obs - tol) / 2**m), True
    rng = np.random.default_rng(seed)
    hits = 0
    rows = max(1, _BLOCK_ELEMENTS // m)
    for start in range(0, n_resamples, rows):
        k = min(n_resamples, start + rows) - start
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(k, m))
        hits += int(np.count_nonzero(np.abs(signs @ d) >= t_obs - tol))
    return (hits + 1) / (n_resamples + 1), False


def permutation_test_paired(
    a: Sequence[float], b: Sequence[float], n_resamples: int = 10000, seed: int = 0
) -> float:
    """Two-sided sign-flip permutation test of ``mean(b - a) == 0``.

    Under the null each paired difference is as likely to have either sign; the
    statistic is ``|sum(d)|``. Zero differences are dropped (their sign does not
    matter). With ``m`` non-zero differences and ``2**m <= n_resamples`` all sign
    patterns are enumerated and ``p = #{|T*| >= |T|} / 2**m`` is exact;
    otherwise ``n_resamples`` random patterns give
    ``p = (1 + #{|T*| >= |T|}) / (1 + n_resamples)``.
    For a 0/1 metric this is the (exact or Monte-Carlo) sign test on the
    discordant pairs, i.e. McNemar's test.
    """
    a, b = _as_pair(a, b)
    return sign_flip_p(b - a, check_resamples(n_resamples), seed)[0]


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts ``b`` and ``c``.

    Binomial test of ``min(b, c)`` successes in ``b + c`` trials at ``p = 0.5``:
    ``p = min(1, 2 * P(X <= min(b, c)))``; ``1.0`` when ``b + c == 0``.
    Equals ``scipy.stats.binomtest(min(b, c), b + c, 0.5).pvalue``.
    """
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be >= 0")
    if b + c == 0:
        return 1.0
    return float(min(1.0, 2.0 * _sps.binom.cdf(min(b, c), b + c, 0.5)))


def discordant_counts(a: Sequence[float], b: Sequence[float]) -> dict[str, int]:
    """Counts of the 2x2 paired table of two 0/1 vectors (A = reference, B = new).

    ``n01`` = ``b_only_right`` (A wrong, B right); ``n10`` = ``a_only_right``
    (A right, B wrong); ``both_right``; ``both_wrong``.
    """
    a, b = _as_pair(a, b)
    if not (np.isin(a, (0, 1)).all() and np.isin(b, (0, 1)).all()):
        raise ValueError("discordant counts need 0/1 values")
    n01 = int(np.count_nonzero((a == 0) & (b == 1)))
    n10 = int(np.count_nonzero((a == 1) & (b == 0)))
    return {
        "n01": n01,
        "n10": n10,
        "b_only_right": n01,
        "a_only_right": n10,
        "both_right": int(np.count_nonzero((a == 1) & (b == 1))),
        "both_wrong": int(np.count_nonzero((a == 0) & (b == 0))),
    }


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm (1979) step-down adjusted p-values, in the input order.

    Sorted ascending, ``p_(i)`` becomes ``max_{j <= i} min(1, (m - j + 1) p_(j))``.
    """
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise ValueError("pvalues must be one-dimensional")
    if p.size == 0:
        return []
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("p-values must lie in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    adj_sorted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    adj = np.empty(m)
    adj[order] = adj_sorted
    return [float(x) for x in adj]


def two_proportion_test(x1: int, n1: int, x2: int, n2: int) -> dict[str, Any]:
    """Unpaired comparison of two proportions ``x1/n1`` (A) and ``x2/n2`` (B).

    ``p_z``: two-sided pooled z-test,
    ``z = (p2 - p1) / sqrt(p (1 - p) (1/n1 + 1/n2))`` with ``p = (x1 + x2)/(n1 + n2)``.
    ``p_fisher``: two-sided Fisher exact test on ``[[x1, n1-x1], [x2, n2-x2]]``.
    Valid only if the two samples are independent; for two runs on the *same*
    items use the paired tests (McNemar), which are usually far more powerful.
    """
    x1, n1, x2, n2 = int(x1), int(n1), int(x2), int(n2)
    if n1 < 1 or n2 < 1 or not (0 <= x1 <= n1) or not (0 <= x2 <= n2):
        raise ValueError("need 0 <= x <= n and n >= 1 for both samples")
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        z, p_z = 0.0, 1.0
    else:
        z = (p2 - p1) / se
        p_z = float(2 * _sps.norm.sf(abs(z)))
    p_fisher = float(_sps.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]]).pvalue)
    return {
        "x1": x1,
        "n1": n1,
        "x2": x2,
        "n2": n2,
        "p1": p1,
        "p2": p2,
        "diff": p2 - p1,
        "z": float(z),
        "p_z": p_z,
        "p_fisher": p_fisher,
    }
