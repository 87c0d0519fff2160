"""Seed-aware results per run group, grid (ablation) tables and figures.

A *group* is one model's runs of one recipe across seeds (``ft-aihub+r8``,
``ft-aihub+r8@s43``, ...; base and icl are one-member groups). Per eval set and metric,
:func:`seed_report` gives every group's per-seed values, mean, sd and a two-level interval
of its mean, and the seed-aware comparisons of :func:`kmedqa.stats.seeds.seeded_pairs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kmedqa.io import read_jsonl
from kmedqa.paper.tables import Table, fmt_ci
from kmedqa.recipes import parse_variant
from kmedqa.stats.seeds import (
    _percentile,
    compare_seeded,
    seed_matrix,
    seeded_pairs,
    two_level_bootstrap,
)


def groups_of(runs: Sequence[tuple[str, str]], seed: int) -> dict[str, dict[str, list]]:
    """model -> stem -> [(seed, variant)] in run order (base / icl: their own stem)."""
    out: dict[str, dict[str, list]] = {}
    for model, v in runs:
        p = parse_variant(v)
        stem = v if p is None else p.stem
        s = seed if p is None or p.seed is None else p.seed
        out.setdefault(model, {}).setdefault(stem, []).append((s, v))
    return out


def study_stems(stems: Sequence[str]) -> dict[str, str]:
    """Every fine-tuned stem -> the stem of its train set's study recipe (``ft-<set>``)."""
    out = {}
    for s in stems:
        p = parse_variant(s)
        if p is not None:
            out[s] = f"ft-{p.train_set}"
    return out


def seed_report(
    eval_set: str,
    runs: Sequence[tuple[str, str]],
    files: Mapping[tuple[str, str], str],
    metrics: Sequence[str],
    *,
    resamples: int,
    seed: int,
    config_seed: int,
) -> dict[str, Any]:
    """Groups (per-seed values, mean, sd, two-level CI of the mean) and comparisons."""
    cache: dict[str, list] = {}

    def rows(path):
        if path not in cache:
            cache[path] = read_jsonl(path)
        return cache[path]

    groups_out, comps = [], []
    for model, groups in sorted(groups_of(runs, config_seed).items()):

        def members(stem, model=model, groups=groups):
            return [rows(files[(model, v)]) for _, v in groups[stem]]

        for metric in metrics:
            usable = {s for s in groups if any(r.get(metric) is not None for r in members(s)[0])}
            for stem in groups:
                if stem not in usable:
                    continue
                ids, x = seed_matrix(
                    members(stem), metric, [files[(model, v)] for _, v in groups[stem]]
                )
                boot = two_level_bootstrap(
                    np.zeros((1, x.shape[1])), x, n_resamples=resamples, seed=seed
                )
                per = x.mean(1)
                groups_out.append(
                    {
                        "eval_set": eval_set,
                        "model": model,
                        "run": f"{model}:{stem}",
                        "metric": metric,
                        "n": len(ids),
                        "seeds": [s for s, _ in groups[stem]],
                        "per_seed": per.tolist(),
                        "mean": float(per.mean()),
                        "sd": float(per.std(ddof=1)) if len(per) > 1 else None,
                        "ci_two_level": _percentile(boot, 0.95),
                    }
                )
            for ref, cand in seeded_pairs(groups, study_stems(list(groups))):
                if ref not in usable or cand not in usable:
                    continue
                c = compare_seeded(
                    members(ref),
                    members(cand),
                    metric,
                    seeds_a=[s for s, _ in groups[ref]],
                    seeds_b=[s for s, _ in groups[cand]],
                    files_a=[files[(model, v)] for _, v in groups[ref]],
                    files_b=[files[(model, v)] for _, v in groups[cand]],
                    n_resamples=resamples,
                    seed=seed,
                )
                c.update(
                    eval_set=eval_set, model=model, run_a=f"{model}:{ref}", run_b=f"{model}:{cand}"
                )
                comps.append(c)
    return {"eval_set": eval_set, "groups": groups_out, "comparisons": comps}


def ci_basis(c: Mapping[str, Any]) -> str:
    """Which interval a seed-aware claim rests on."""
    k = max(len(c["seeds_a"]), len(c["seeds_b"]))
    return f"seeds+items ({len(c['seeds_a'])}×{len(c['seeds_b'])} seeds)" if k > 1 else "items"


def grid_rows(
    grid: str,
    members: Sequence[Mapping[str, Any]],
    uses: Sequence[tuple[str, str]],
    reports: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """One row per (model, train set, eval set, metric, grid point)."""
    out = []
    for rep in reports:
        groups = {(g["run"], g["metric"]): g for g in rep["groups"]}
        comps = {(c["run_a"], c["run_b"], c["metric"]): c for c in rep["comparisons"]}
        metrics = sorted(
            {g["metric"] for g in rep["groups"]}, key=[g["metric"] for g in rep["groups"]].index
        )
        for model, train_set in uses:
            study = f"{model}:ft-{train_set}"
            for metric in metrics:
                for m in members:
                    stem = f"ft-{train_set}" + (f"+{m['recipe']}" if m["recipe"] else "")
                    run = f"{model}:{stem}"
                    g = groups.get((run, metric))
                    if g is None:
                        continue
                    c = comps.get((study, run, metric))
                    out.append(
                        {
                            "grid": grid,
                            "eval_set": rep["eval_set"],
                            "metric": metric,
                            "run": run,
                            "labels": dict(m["labels"]),
                            "study": bool(m["study"]),
                            **{
                                k: g[k]
                                for k in ("n", "seeds", "per_seed", "mean", "sd", "ci_two_level")
                            },
                            "diff_vs_study": None if c is None else c["diff"],
                            "ci_diff_two_level": None if c is None else c["ci_two_level"],
                            "ci_diff_items": None if c is None else c["ci_items"],
                        }
                    )
    return out


def ablation_table(name: str, grid: str, rows: Sequence[Mapping[str, Any]]) -> Table:
    axes = list(rows[0]["labels"]) if rows else []
    t = Table(
        name,
        f"Ablation grid {grid}: metric per recipe over seeds (mean ± sd, per-seed values), "
        "95% two-level bootstrap CI (seeds, then items); Δ vs the study's recipe (★)",
        [
            "eval set",
            "metric",
            *axes,
            "seeds",
            "per seed",
            "mean ± sd",
            "95% CI",
            "Δ vs ★",
            "95% CI of Δ (seeds+items)",
            "95% CI of Δ (items)",
        ],
    )
    for r in rows:
        labels = [
            r["labels"][a] + (" ★" if r["study"] and i == 0 else "") for i, a in enumerate(axes)
        ]
        sd = "" if r["sd"] is None else f" ± {r['sd']:.3f}"
        t.rows.append(
            [
                r["eval_set"],
                r["metric"],
                *labels,
                len(r["seeds"]),
                ", ".join(f"{v:.3f}" for v in r["per_seed"]),
                f"{r['mean']:.3f}{sd}",
                fmt_ci(r["ci_two_level"]),
                "–" if r["diff_vs_study"] is None else f"{r['diff_vs_study']:+.3f}",
                fmt_ci(r["ci_diff_two_level"]),
                fmt_ci(r["ci_diff_items"]),
            ]
        )
    t.notes.append(
        "★ the study's own recipe. With one seed the two-level interval is the item-only one; "
        "a recipe's difference is robust to training randomness only when the seeds+items "
        "interval excludes 0."
    )
    return t


def ablation_figure(rows: Sequence[Mapping[str, Any]], stem: str) -> list[str]:
    """Metric per recipe: seed-mean with two-level CI, each seed a dot; ★ the study's."""
    from kmedqa.paper.figures import plt, save, setup_fonts

    setup_fonts()
    panels = []
    for r in rows:
        key = (r["eval_set"], r["metric"], r["run"].split(":")[0])
        if key not in panels:
            panels.append(key)
    panels = panels or [("–", "–", "–")]
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 2.6 * len(panels)), squeeze=False)
    for ax, (es, metric, model) in zip(axes[:, 0], panels, strict=True):
        sub = [
            r
            for r in rows
            if (r["eval_set"], r["metric"], r["run"].split(":")[0]) == (es, metric, model)
        ]
        for x, r in enumerate(sub):
            color = "#d84315" if r["study"] else "#5c6bc0"
            lo, hi = r["ci_two_level"]
            ax.errorbar(
                x,
                r["mean"],
                yerr=[[r["mean"] - lo], [hi - r["mean"]]],
                fmt="o",
                color=color,
                capsize=3,
            )
            ax.scatter(
                [x] * len(r["per_seed"]), r["per_seed"], s=10, color="k", alpha=0.5, zorder=3
            )
        ax.set_xticks(
            range(len(sub)),
            ["-".join(r["labels"].values()) + (" ★" if r["study"] else "") for r in sub],
            rotation=30,
            ha="right",
            fontsize=7,
        )
        ax.set_title(f"{model} · {es} · {metric}", fontsize=8)
        ax.set_ylabel(metric)
    fig.tight_layout()
    return save(fig, stem)


def balance_domains(
    scores: Mapping[str, list[list[dict]]], metric: str, seed: int, resamples: int
) -> list[dict[str, Any]]:
    """Per-department mean of ``metric`` per run group (seeds pooled), two-level CI."""
    out = []
    for run, seeds in scores.items():
        doms = sorted({r.get("domain") or "-" for r in seeds[0]})
        for dom in doms:
            sub = [[r for r in rows if (r.get("domain") or "-") == dom] for rows in seeds]
            ids, x = seed_matrix(sub, metric)
            if not ids:
                continue
            boot = two_level_bootstrap(
                np.zeros((1, x.shape[1])), x, n_resamples=resamples, seed=seed
            )
            out.append(
                {
                    "run": run,
                    "domain": dom,
                    "metric": metric,
                    "n": len(ids),
                    "seeds": len(seeds),
                    "mean": float(x.mean()),
                    "ci": _percentile(boot, 0.95),
                }
            )
    return out
