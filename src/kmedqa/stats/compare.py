"""Which runs are compared with which, on which metrics; and the power analysis.

Every fine-tuned run is compared with its base (and its icl) run on every eval set
and metric; the icl run with the base run too. A *family* for Holm's correction is
one eval set x one metric (all the run pairs compared on it).
"""

from __future__ import annotations

from typing import Any

from kmedqa.io import read_jsonl
from kmedqa.stats.paired_files import compare_families, compare_paired
from kmedqa.stats.power import mcnemar_mde, mde_curve, published_3pp_question, two_proportion_mde

# Sample sizes the studies' numbers rest on, marked on the power figure with what they
# are: study 001 (essential-medical) reports MCQ accuracy on the 66 MCQ items of its
# 198-item sample (66 per question type), ROUGE on all 198, KorMedMCQA on 200 doctor items,
# and has a 1,728-item test split; 435 is study 004's KorMedMCQA doctor test set.
STUDY_NS = {
    66: "study 001: MCQ items of its sample",
    198: "study 001: ROUGE sample",
    200: "study 001: KorMedMCQA sample",
    435: "study 004: KorMedMCQA doctor test",
    1728: "study 001: test split",
}


def comparison_pairs(variants: list[str]) -> list[tuple[str, str]]:
    """(reference, candidate) variant pairs: base->ft, icl->ft, base->icl."""
    pairs = []
    for v in variants:
        if v.startswith("ft-"):
            for ref in ("base", "icl"):
                if ref in variants:
                    pairs.append((ref, v))
    if "base" in variants and "icl" in variants:
        pairs.append(("base", "icl"))
    return pairs


def _applies(rows: list[dict[str, Any]], metric: str) -> bool:
    return any(r.get(metric) is not None for r in rows)


def compare_eval_set(
    eval_set: str,
    score_files: dict[tuple[str, str], str],
    metrics: list[str],
    *,
    resamples: int = 10000,
    seed: int = 0,
    ci_method: str = "percentile",
) -> list[dict[str, Any]]:
    """All paired comparisons on one eval set, Holm-adjusted per metric family."""
    by_model: dict[str, list[str]] = {}
    for model, variant in score_files:
        by_model.setdefault(model, []).append(variant)
    rows_cache: dict[str, list[dict[str, Any]]] = {}

    def rows(path: str) -> list[dict[str, Any]]:
        if path not in rows_cache:
            rows_cache[path] = read_jsonl(path)
        return rows_cache[path]

    out = []
    for model, variants in sorted(by_model.items()):
        for ref, cand in comparison_pairs(variants):
            fa, fb = score_files[(model, ref)], score_files[(model, cand)]
            for metric in metrics:
                if not (_applies(rows(fa), metric) and _applies(rows(fb), metric)):
                    continue
                c = compare_paired(
                    rows(fa),
                    rows(fb),
                    metric,
                    n_resamples=resamples,
                    seed=seed,
                    file_a=fa,
                    file_b=fb,
                    ci_method=ci_method,
                )
                c.update(
                    eval_set=eval_set, model=model, run_a=f"{model}:{ref}", run_b=f"{model}:{cand}"
                )
                out.append(c)
    return compare_families(out, by=("eval_set", "metric")) if out else []


def power_report(comparisons: list[dict[str, Any]]) -> dict[str, Any]:
    """The 3.0%p question, MDE curves, and the MDE of each observed comparison."""
    ns = sorted({*range(50, 3001, 50), *STUDY_NS})
    observed = []
    for c in comparisons:
        if not c.get("binary"):
            continue
        n = c["n"]
        p_disc = (c["n01"] + c["n10"]) / n if n else 0.0
        observed.append(
            {
                "eval_set": c["eval_set"],
                "run_a": c["run_a"],
                "run_b": c["run_b"],
                "metric": c["metric"],
                "n": n,
                "p_disc": p_disc,
                "mde_mcnemar": _finite(mcnemar_mde(n, p_disc)) if p_disc > 0 else None,
                "mde_unpaired": _finite(two_proportion_mde(n, c["mean_a"]))
                if 0 < c["mean_a"] < 1
                else None,
            }
        )
    return {
        "published_3pp": published_3pp_question(),
        "mde_curve": mde_curve(ns, [0.1, 0.2, 0.3], p_base=0.55),
        "study_ns": [{"n": n, "label": label} for n, label in sorted(STUDY_NS.items())],
        "observed": observed,
    }


def _finite(x: float) -> float | None:
    return None if x != x else float(x)  # NaN -> None


def mean_ci(
    values: list[float], *, n_resamples: int = 10000, seed: int = 0, level: float = 0.95
) -> list[float]:
    """Percentile bootstrap interval of a mean (items resampled with replacement)."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_resamples, len(x)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return [float(lo), float(hi)]


def domain_accuracy(
    scores: dict[tuple[str, str], list[dict[str, Any]]], metric: str = "mcq_strict", seed: int = 0
) -> list[dict[str, Any]]:
    """Per (eval set, run, department): mean of ``metric`` with a bootstrap 95% interval."""
    out = []
    for (run, es), rows in sorted(scores.items()):
        groups: dict[str, list[float]] = {}
        for r in rows:
            if r.get(metric) is not None:
                groups.setdefault(r.get("domain") or "-", []).append(r[metric])
        for dom, vals in sorted(groups.items()):
            out.append(
                {
                    "eval_set": es,
                    "run": run,
                    "domain": dom,
                    "metric": metric,
                    "n": len(vals),
                    "mean": sum(vals) / len(vals),
                    "ci": mean_ci(vals, seed=seed),
                }
            )
    return out
