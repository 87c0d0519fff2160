"""Two runs' per-item score files compared on one metric, and Holm within families.

:func:`compare_paired` joins the files on ``id`` (every id in both, the same item in both)
and runs the paired tests of :mod:`kmedqa.stats.paired` (conventions there: ``diff`` is
``B - A``, p-values are two-sided, the same inputs and seed give the same numbers);
:func:`compare_family` / :func:`compare_families` Holm-adjust the headline p-values
(:func:`primary_p`) within each eval set x metric.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from kmedqa.errors import InputError
from kmedqa.stats.paired import (
    check_resamples,
    discordant_counts,
    holm,
    mcnemar_exact,
    paired_bootstrap,
    sign_flip_p,
)

__all__ = ["compare_paired", "compare_family", "compare_families", "primary_p"]


def _index_rows(rows: Iterable[Mapping[str, Any]], file: str) -> dict[Any, Mapping[str, Any]]:
    out: dict[Any, Mapping[str, Any]] = {}
    for i, row in enumerate(rows, 1):
        if "id" not in row or row["id"] is None:
            raise InputError(f"row {i} has no id", file=file, field="id")
        key = row["id"]
        if not isinstance(key, str | int) or isinstance(key, bool):
            raise InputError(f"row {i}: id must be a string or an integer", file=file, field="id")
        if key in out:
            raise InputError("duplicate id", file=file, item=key, field="id")
        out[key] = row
    return out


def _metric_value(row: Mapping[str, Any], metric: str, file: str, key: Any) -> float | None:
    if metric not in row:
        raise InputError("metric column is missing", file=file, item=key, field=metric)
    v = row[metric]
    if v is None:
        return None
    if isinstance(v, bool):
        return float(v)
    if not isinstance(v, int | float) or not math.isfinite(v):
        raise InputError(
            f"metric value {v!r} is not a finite number", file=file, item=key, field=metric
        )
    return float(v)


def _not_answered(row: Mapping[str, Any]) -> bool:
    return row.get("status") not in (None, "ok")


def primary_p(comparison: Mapping[str, Any]) -> tuple[str, float]:
    """The headline test of a comparison: exact McNemar for 0/1 metrics, else
    the sign-flip permutation test. Returns ``(key, p)``."""
    key = "p_mcnemar" if comparison.get("p_mcnemar") is not None else "p_permutation"
    return key, comparison[key]


def compare_paired(
    rows_a: Iterable[Mapping[str, Any]],
    rows_b: Iterable[Mapping[str, Any]],
    metric: str,
    n_resamples: int = 10000,
    seed: int = 0,
    file_a: str | None = None,
    file_b: str | None = None,
    ci_method: str = "percentile",
    ci: float = 0.95,
) -> dict[str, Any]:
    """Compare run A with run B on ``metric`` over the items both files score.

    Rows are joined on ``id``; every id must be in both files. Items whose
    metric is null (``None``) in *both* files (the metric does not apply) are
    dropped and counted in ``n_excluded``; null in only one file is an error, unless that
    row's ``status`` says the run gave no answer (a refused or malformed hosted reply):
    such items are dropped and counted in ``n_not_answered``.
    Items are sorted by ``str(id)`` before resampling, so the result does not
    depend on row order.

    Returns ``metric, n, n_excluded, mean_a, mean_b, diff`` (B - A), ``ci``,
    ``ci_level, ci_method, p_bootstrap, p_permutation, permutation_exact,
    n_resamples, seed, binary`` and, when every value is 0 or 1,
    ``p_mcnemar`` with the discordant counts ``b_only_right`` (= ``n01``: A
    wrong, B right), ``a_only_right`` (= ``n10``: A right, B wrong),
    ``both_right`` and ``both_wrong``. ``p_primary``/``primary_test`` name the
    headline test (McNemar for 0/1 metrics, else permutation).
    """
    fa = file_a or "A"
    fb = file_b or "B"
    ia = _index_rows(rows_a, fa)
    ib = _index_rows(rows_b, fb)
    for key in ia:
        if key not in ib:
            raise InputError(f"id is missing from {fb}", file=fa, item=key, field="id")
    for key in ib:
        if key not in ia:
            raise InputError(f"id is missing from {fa}", file=fb, item=key, field="id")
    keys = sorted(ia, key=lambda k: (str(k), type(k).__name__))
    for key in keys:  # the same id must be the same item in both (scores carry item_sha)
        sa, sb = ia[key].get("item_sha"), ib[key].get("item_sha")
        if sa is not None and sb is not None and sa != sb:
            raise InputError(
                f"scored on another item than the one with this id in {fa} (item_sha {sb} vs "
                f"{sa}): the two files come from different items files",
                file=fb,
                item=key,
                field="item_sha",
            )
    va: list[float] = []
    vb: list[float] = []
    excluded = 0
    not_answered = 0
    for key in keys:
        x = _metric_value(ia[key], metric, fa, key)
        y = _metric_value(ib[key], metric, fb, key)
        if x is None and y is None:
            excluded += 1
            continue
        if x is None or y is None:
            if _not_answered(ia[key]) or _not_answered(ib[key]):
                not_answered += 1  # a refused / malformed hosted reply: not an answer
                continue
            bad = fa if x is None else fb
            raise InputError(
                "metric is null in this file but not in the other", file=bad, item=key, field=metric
            )
        va.append(x)
        vb.append(y)
    if not va:
        raise InputError(
            f"no item has a value for the metric in {fa} and {fb}", file=fa, field=metric
        )
    a = np.asarray(va)
    b = np.asarray(vb)
    boot = paired_bootstrap(a, b, n_resamples=n_resamples, seed=seed, ci=ci, method=ci_method)
    p_perm, exact = sign_flip_p(b - a, check_resamples(n_resamples), seed)
    out: dict[str, Any] = {
        "metric": metric,
        "n": int(a.size),
        "n_excluded": excluded,
        "n_not_answered": not_answered,
        "mean_a": float(a.mean()),
        "mean_b": float(b.mean()),
        "diff": boot["diff"],
        "ci": boot["ci"],
        "ci_level": ci,
        "ci_method": ci_method,
        "p_bootstrap": boot["p_bootstrap"],
        "p_permutation": p_perm,
        "permutation_exact": exact,
        "n_resamples": int(n_resamples),
        "seed": int(seed),
    }
    if file_a is not None:
        out["file_a"] = str(file_a)
    if file_b is not None:
        out["file_b"] = str(file_b)
    binary = bool(np.isin(a, (0, 1)).all() and np.isin(b, (0, 1)).all())
    out["binary"] = binary
    if binary:
        counts = discordant_counts(a, b)
        out.update(counts)
        out["p_mcnemar"] = mcnemar_exact(counts["n01"], counts["n10"])
    key, p = primary_p(out)
    out["primary_test"] = key.removeprefix("p_")
    out["p_primary"] = p
    return out


def compare_family(
    comparisons: Sequence[Mapping[str, Any]], p_key: str | None = None
) -> list[dict[str, Any]]:
    """Holm-adjust the p-values of one *family* of comparisons.

    A family is every comparison made on **one eval set for one metric** (e.g.
    all run pairs compared on KorMedMCQA-doctor ``mcq_strict``): the claims a
    reader would scan together. Different metrics or eval sets are separate
    families (they answer different questions), so mixing them is an error when
    the comparisons carry ``metric`` / ``eval_set`` keys.

    ``p_key`` chooses the p-value to adjust; by default each comparison's
    headline test (:func:`primary_p`: McNemar for 0/1 metrics, otherwise the
    permutation test). Returns copies with ``p_holm``, ``p_holm_of`` (the key
    adjusted) and ``family_size`` added, in the input order.
    """
    comps = [dict(c) for c in comparisons]
    for field in ("metric", "eval_set"):
        values = {c.get(field) for c in comps if c.get(field) is not None}
        if len(values) > 1:
            raise ValueError(f"a family has one {field}; got {sorted(map(str, values))}")
    keys = [p_key if p_key is not None else primary_p(c)[0] for c in comps]
    adjusted = holm([c[k] for c, k in zip(comps, keys, strict=True)])
    for c, k, p in zip(comps, keys, adjusted, strict=True):
        c["p_holm"] = p
        c["p_holm_of"] = k
        c["family_size"] = len(comps)
    return comps


def compare_families(
    comparisons: Sequence[Mapping[str, Any]],
    by: Sequence[str] = ("eval_set", "metric"),
    p_key: str | None = None,
) -> list[dict[str, Any]]:
    """Group comparisons by the ``by`` keys and apply :func:`compare_family` to
    each group; returns all comparisons (with ``p_holm``) in the input order."""
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(comparisons):
        groups.setdefault(tuple(c.get(k) for k in by), []).append(i)
    out: list[dict[str, Any] | None] = [None] * len(comparisons)
    for idx in groups.values():
        for i, c in zip(idx, compare_family([comparisons[i] for i in idx], p_key), strict=True):
            out[i] = c
    return out  # type: ignore[return-value]
