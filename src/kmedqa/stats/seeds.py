"""Comparisons that account for training randomness: several seeds per fine-tuned run.

A fine-tune trained with seeds s_1..s_k gives k score files over the same items. For run A
(k_A seeds; a base run has one) and run B (k_B seeds), the **two-level bootstrap** draws,
per resample, k_A seeds of A and k_B seeds of B with replacement (independently: seed 42
of two recipes shares nothing), then n items with replacement (the same items for both,
paired on item ids), and takes the mean over the drawn items of (B's mean over its drawn
seeds − A's). Its percentile interval covers both the test-set sampling and the
seed-to-seed spread of the fine-tune. The **item-only** interval (today's) resamples the
items of the seed-averaged scores with the seeds held fixed: it answers "would another
test set agree?", not "would another training run agree?".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kmedqa.errors import InputError
from kmedqa.stats.paired import paired_bootstrap


def seed_matrix(
    runs: Sequence[Sequence[Mapping[str, Any]]], metric: str, files: Sequence[str] | None = None
) -> tuple[list[Any], np.ndarray]:
    """(item ids, seeds x items array) of ``metric``; items null in every seed are left out.

    Every seed must score the same ids; a value null in one seed only is an error."""
    names = list(files or [f"seed {i}" for i in range(len(runs))])
    index = [{r["id"]: r.get(metric) for r in rows} for rows in runs]
    ids = sorted(index[0], key=lambda k: (str(k), type(k).__name__))
    for name, idx in zip(names, index, strict=True):
        if set(idx) != set(index[0]):
            raise InputError(f"scores other items than {names[0]}", file=name, field="id")
    keep = []
    for i in ids:
        vals = [idx[i] for idx in index]
        if all(v is None for v in vals):
            continue
        if any(v is None for v in vals):
            bad = names[[v is None for v in vals].index(True)]
            raise InputError("metric is null in this seed only", file=bad, item=i, field=metric)
        keep.append(i)
    return keep, np.array([[float(idx[i]) for i in keep] for idx in index])


def two_level_bootstrap(
    a: np.ndarray,
    b: np.ndarray,
    *,
    n_resamples: int = 10000,
    seed: int = 0,
    ci: float = 0.95,
    chunk: int = 500,
) -> np.ndarray:
    """``n_resamples`` bootstrap differences (B − A): seeds of each run, then items."""
    a = np.atleast_2d(np.asarray(a, float))
    b = np.atleast_2d(np.asarray(b, float))
    if a.shape[1] != b.shape[1] or a.shape[1] == 0:
        raise ValueError("A and B must score the same, non-empty set of items")
    n = a.shape[1]
    rng = np.random.default_rng(seed)
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, chunk):
        m = min(chunk, n_resamples - start)
        wa = _seed_weights(rng, m, a.shape[0])  # m x k_A, rows sum to 1
        wb = _seed_weights(rng, m, b.shape[0])
        per_item = wb @ b - wa @ a  # m x n: each resample's seed-averaged difference
        items = rng.integers(0, n, size=(m, n))
        out[start : start + m] = np.take_along_axis(per_item, items, axis=1).mean(axis=1)
    return out


def _seed_weights(rng: np.random.Generator, m: int, k: int) -> np.ndarray:
    draws = rng.integers(0, k, size=(m, k))
    w = np.zeros((m, k))
    np.add.at(w, (np.repeat(np.arange(m), k), draws.ravel()), 1.0)
    return w / k


def _percentile(boot: np.ndarray, ci: float) -> list[float]:
    lo, hi = np.quantile(boot, [(1 - ci) / 2, (1 + ci) / 2])
    return [float(lo), float(hi)]


def compare_seeded(
    runs_a: Sequence[Sequence[Mapping[str, Any]]],
    runs_b: Sequence[Sequence[Mapping[str, Any]]],
    metric: str,
    *,
    seeds_a: Sequence[int] | None = None,
    seeds_b: Sequence[int] | None = None,
    files_a: Sequence[str] | None = None,
    files_b: Sequence[str] | None = None,
    n_resamples: int = 10000,
    seed: int = 0,
    ci: float = 0.95,
) -> dict[str, Any]:
    """Per-seed values, their mean and sd, and both intervals of B − A."""
    ids_a, xa = seed_matrix(runs_a, metric, files_a)
    ids_b, xb = seed_matrix(runs_b, metric, files_b)
    if ids_a != ids_b:
        raise InputError(
            "the two runs score different items",
            file=(files_b or ["B"])[0],
            field="id",
        )
    boot = two_level_bootstrap(xa, xb, n_resamples=n_resamples, seed=seed, ci=ci)
    item_only = paired_bootstrap(xa.mean(0), xb.mean(0), n_resamples=n_resamples, seed=seed, ci=ci)
    per_a = xa.mean(1)
    per_b = xb.mean(1)
    return {
        "metric": metric,
        "n": len(ids_a),
        "seeds_a": list(seeds_a or range(len(runs_a))),
        "seeds_b": list(seeds_b or range(len(runs_b))),
        "per_seed_a": per_a.tolist(),
        "per_seed_b": per_b.tolist(),
        "mean_a": float(per_a.mean()),
        "mean_b": float(per_b.mean()),
        "sd_a": float(per_a.std(ddof=1)) if len(per_a) > 1 else None,
        "sd_b": float(per_b.std(ddof=1)) if len(per_b) > 1 else None,
        "diff": float(per_b.mean() - per_a.mean()),
        "ci_two_level": _percentile(boot, ci),
        "ci_items": item_only["ci"],
        "ci_level": ci,
        "n_resamples": int(n_resamples),
        "seed": int(seed),
    }


def seeded_pairs(
    groups: Mapping[str, Sequence[tuple[int, str]]], study_stems: Mapping[str, str]
) -> list[tuple[str, str]]:
    """(reference stem, candidate stem) pairs of one model: base and icl against every
    fine-tuned group, and the study's recipe against each other recipe of its train set.
    ``groups``: stem -> [(seed, variant)] (base / icl are one-member groups);
    ``study_stems``: stem -> the study recipe's stem of its train set."""
    pairs = []
    ft = [s for s in groups if s.startswith("ft-")]
    for s in ft:
        for ref in ("base", "icl"):
            if ref in groups:
                pairs.append((ref, s))
        ref = study_stems.get(s)
        if ref and ref != s and ref in groups:
            pairs.append((ref, s))
    return pairs
