"""Published numbers beside kmedqa's recomputation on the same eval set and metric.

A study config declares what its study reported in a ``published:`` block::

    published:
      study: "Song & Erdenebayar, JKSCI 31(5) 2026"
      illustrative: false          # true: made-up numbers that only exercise the table (demo)
      results:
        - {run: qwen2.5-7b/ft-aihub, eval_set: aihub-sample198, metric: mcq_strict,
           value: 0.682, n: 66, reported: "68.20%", source: "Table 4"}
        - {run: ..., group: {domain: 내과}, ...}                       # a subgroup
        - {run: ..., comparable: false, reason: "BLEURT-20 vs BLEURT-large-512"}

``run`` is ``<model>/<variant>`` as in ``results/scores/<model>/<variant>/``. kmedqa's
value is the mean of ``metric`` over the eval set's items (those with a value, in the
group), its 95% interval a bootstrap over items with the compare stage's method and
number of resamples. The verdict: the published value lies inside or outside that
interval; "not comparable: <reason>" where kmedqa's eval set or metric differs from
the study's; "not run" where the config has no such run (e.g. a hosted model not yet
configured) or the run has no value of the metric.
"""

from __future__ import annotations

from typing import Any

from kmedqa.errors import ConfigError
from kmedqa.paper.fidelity import LongTable
from kmedqa.paper.tables import NOT_RUN, fmt, fmt_ci
from kmedqa.stats.paired import paired_bootstrap

INSIDE = "inside the CI"
OUTSIDE = "outside the CI"


def run_key(run: str) -> tuple[str, str]:
    """``model/variant`` -> (model, variant)."""
    model, _, variant = run.partition("/")
    return model, variant


def check_published(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The config's declared results, cross-checked against its eval sets (one-line errors)."""
    block = config.get("published") or {}
    eval_sets = config["evaluation"]["eval_sets"]
    out = []
    for i, r in enumerate(block.get("results", [])):
        where = f"published.results[{i}]"
        if r["eval_set"] not in eval_sets:
            raise ConfigError(
                f"{where}.eval_set: unknown eval set {r['eval_set']!r}; "
                f"declared: {', '.join(sorted(eval_sets))}"
            )
        if r.get("comparable", True) is False and not r.get("reason"):
            raise ConfigError(f"{where}: comparable: false needs a reason")
        out.append(r)
    return out


def needed_scores(config: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(model, variant, eval set) of every declared result that the config runs."""
    from kmedqa.recipes import plan

    # the runs with recipes, grids and seeds expanded (a published row names one of them)
    runs = {(m, v) for m, variants in plan(config).runs.items() for v in variants}
    keys = []
    for r in check_published(config):
        m, v = run_key(r["run"])
        if (m, v) in runs and r.get("comparable", True) and (m, v, r["eval_set"]) not in keys:
            keys.append((m, v, r["eval_set"]))
    return keys


def _values(rows: list[dict[str, Any]], metric: str, group: dict[str, Any] | None) -> list[float]:
    vals = []
    for row in rows:
        if group and any(row.get(k) != v for k, v in group.items()):
            continue
        if row.get(metric) is not None:
            vals.append(float(row[metric]))
    return vals


def reproduce(
    entries: list[dict[str, Any]],
    scores: dict[tuple[str, str, str], list[dict[str, Any]]],
    *,
    resamples: int = 10000,
    seed: int = 0,
    ci_method: str = "percentile",
    runs: set[tuple[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """One row per declared result: the published value, kmedqa's mean, CI and verdict.

    ``scores`` maps (model, variant, eval set) to per-item score rows; ``runs`` are the
    config's (model, variant) pairs (default: those in ``scores``). A declared run the
    config lacks is "not run", whether or not it would be comparable.
    """
    if runs is None:
        runs = {(m, v) for m, v, _ in scores}
    out = []
    for e in entries:
        row = {
            k: e.get(k) for k in ("run", "eval_set", "metric", "value", "n", "reported", "source")
        }
        row.update(group=e.get("group") or {}, mean=None, n_items=None, ci=None)
        m, v = run_key(e["run"])
        if (m, v) not in runs:
            row["verdict"] = NOT_RUN
        elif e.get("comparable", True) is False:
            row["verdict"] = f"not comparable: {e['reason']}"
        elif (m, v, e["eval_set"]) not in scores:
            row["verdict"] = NOT_RUN
        else:
            vals = _values(scores[(m, v, e["eval_set"])], e["metric"], row["group"])
            if not vals:
                row["verdict"] = f"{NOT_RUN}: no {e['metric']} values in this eval set"
            else:
                boot = paired_bootstrap(
                    [0.0] * len(vals), vals, n_resamples=resamples, seed=seed, method=ci_method
                )
                lo, hi = boot["ci"]
                row.update(mean=sum(vals) / len(vals), n_items=len(vals), ci=[lo, hi])
                row["verdict"] = INSIDE if lo <= e["value"] <= hi else OUTSIDE
                if row["verdict"] == OUTSIDE:
                    row["verdict"] += " (published above)" if e["value"] > hi else " (below)"
        out.append(row)
    return out


def _metric_label(row: dict[str, Any]) -> str:
    group = ", ".join(f"{k}={v}" for k, v in row["group"].items())
    return f"{row['metric']} ({group})" if group else row["metric"]


def published_table(
    rows: list[dict[str, Any]],
    *,
    study: str = "",
    illustrative: bool = False,
    ci_method: str = "",
    note: str = "",
) -> LongTable:
    counts = {
        "inside": sum(r["verdict"] == INSIDE for r in rows),
        "outside": sum(r["verdict"].startswith(OUTSIDE) for r in rows),
        "not comparable": sum(r["verdict"].startswith("not comparable") for r in rows),
        "not run": sum(r["verdict"].startswith(NOT_RUN) for r in rows),
    }
    caption = "Published vs reproduced" + (f": {study}" if study else "")
    if illustrative:
        caption += " (ILLUSTRATIVE published numbers: written for the demo, not from any study)"
    t = LongTable(
        "published_vs_reproduced",
        caption,
        [
            "run",
            "eval set",
            "metric",
            "published",
            "n (published)",
            "kmedqa",
            "n (kmedqa)",
            "95% CI",
            "verdict",
            "source",
        ],
        align="p{1.8cm}p{1.6cm}p{1.8cm}p{1.3cm}rp{1.0cm}rp{1.6cm}p{2.2cm}p{1.2cm}",
    )
    for r in rows:
        pub = fmt(float(r["value"]), 4)
        if r.get("reported"):
            pub += f" ({r['reported']})"
        t.rows.append(
            [
                r["run"],
                r["eval_set"],
                _metric_label(r),
                pub,
                fmt(r["n"]) if r["n"] is not None else "not reported",
                fmt(r["mean"], 4),
                fmt(r["n_items"]),
                fmt_ci(r["ci"], 4),
                r["verdict"],
                r.get("source") or "–",
            ]
        )
    if not rows:
        t.notes.append("The config declares no published results" + (f": {note}." if note else "."))
    t.notes.append(
        "kmedqa: mean over the eval set's items with a value of the metric (in the group); "
        f"95% CI: bootstrap over items ({ci_method or 'percentile'}, the compare stage's "
        "resamples and seed). A verdict compares the published value with that interval; "
        "kmedqa's items are not the study's items where the study sampled without saying which. "
        + "; ".join(f"{k}: {v}" for k, v in counts.items())
        + "."
    )
    return t
