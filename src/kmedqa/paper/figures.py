"""Figures of the paper, each written as PDF and PNG from files in ``results/``.

Hangul needs a font that has it: NanumGothic, shipped by the ``koreanize-matplotlib``
package, is registered here (no system font needed).
"""

from __future__ import annotations

import math
from collections import Counter
from importlib.resources import files
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402

Q_TYPE_ORDER = ["객관식", "단답형", "서술형"]
RUN_COLORS = {"base": "#9e9e9e", "icl": "#64b5f6", "ft": "#d84315"}


def setup_fonts() -> str:
    """Register NanumGothic and make it the default family; returns the family used."""
    try:
        font_dir = Path(str(files("koreanize_matplotlib").joinpath("fonts")))
        for ttf in sorted(font_dir.glob("NanumGothic*.ttf")):
            font_manager.fontManager.addfont(str(ttf))
        family = "NanumGothic"
    except ModuleNotFoundError:  # figures still render; Hangul shows as boxes
        family = "DejaVu Sans"
    plt.rcParams.update(
        {
            "font.family": family,
            "axes.unicode_minus": False,
            "pdf.fonttype": 42,
            "figure.dpi": 150,
            "savefig.bbox": "tight",
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    return family


def figure_stem(files: list[str]) -> str:
    """The common stem of a figure's output files (``[x.pdf, x.png]`` -> ``x``)."""
    stems = {str(f).rsplit(".", 1)[0] for f in files}
    if len(stems) != 1:
        raise ValueError(f"not the files of one figure: {list(files)}")
    return stems.pop()


def save(fig, stem: str | Path) -> list[str]:
    """Write ``stem.pdf`` and ``stem.png`` (PDF without a creation date: reruns are identical)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(stem.with_suffix(".pdf"), metadata={"CreationDate": None, "Creator": "kmedqa"})
    fig.savefig(stem.with_suffix(".png"), metadata={"Software": "kmedqa"})
    plt.close(fig)
    return [str(stem.with_suffix(".pdf")), str(stem.with_suffix(".png"))]


def _label(ax, xlabel: str, ylabel: str, *, legend_size: int, title: str | None = None) -> None:
    """A panel's title (if any), axis labels and legend, set in that order."""
    if title is not None:
        ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=legend_size)


def variant_kind(run: str) -> str:
    v = run.split(":", 1)[-1]
    return "ft" if v.startswith("ft-") else v


def data_distribution(datasets: dict[str, list[dict[str, Any]]], stem: str | Path) -> list[str]:
    """Fig. 1: items by department (domain), stacked by question type, one panel per dataset."""
    setup_fonts()
    n = len(datasets)
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 3.6), squeeze=False)
    for ax, (name, items) in zip(axes[0], datasets.items(), strict=True):
        counts = Counter((it.get("domain") or "-", it.get("q_type") or "-") for it in items)
        domains = sorted(
            {d for d, _ in counts},
            key=lambda d: -sum(v for (dd, _), v in counts.items() if dd == d),
        )
        q_types = [q for q in Q_TYPE_ORDER if any(qq == q for _, qq in counts)]
        q_types += sorted({q for _, q in counts} - set(q_types))
        bottom = [0] * len(domains)
        for q in q_types:
            vals = [counts.get((d, q), 0) for d in domains]
            ax.bar(domains, vals, bottom=bottom, label=q)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        for x, total in enumerate(bottom):
            ax.text(x, total, str(total), ha="center", va="bottom", fontsize=8)
        ax.set_title(f"{name} (n = {len(items):,})")
        ax.set_ylabel("items")
        ax.tick_params(axis="x", labelrotation=20)
        ax.legend(title="type", fontsize=8)
    fig.tight_layout()
    return save(fig, stem)


def loss_curves(curves: dict[str, list[dict[str, Any]]], stem: str | Path) -> list[str]:
    """Fig. 2: train and validation loss per step, one panel per training run."""
    setup_fonts()
    n = max(1, len(curves))
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 3.4), squeeze=False)
    for ax, (name, rows) in zip(axes[0], curves.items(), strict=False):
        tr = [(r["step"], r["train_loss"]) for r in rows if r.get("train_loss") not in (None, "")]
        va = [(r["step"], r["val_loss"]) for r in rows if r.get("val_loss") not in (None, "")]
        if tr:
            ax.plot(*zip(*tr, strict=True), label="train", lw=1.2)
        if va:
            ax.plot(*zip(*va, strict=True), "o-", label="validation", lw=1.2)
        _label(ax, "step", "loss", legend_size=8, title=name)
    fig.tight_layout()
    return save(fig, stem)


def grouped_bars(
    summaries: list[dict[str, Any]],
    metrics: list[str],
    stem: str | Path,
    *,
    group: str = "overall",
    label_col: str | None = None,
    title: str = "",
) -> list[str]:
    """Fig. 3: runs side by side per metric (``group='overall'``) or per type/department."""
    setup_fonts()
    rows = [s for s in summaries if s["group"] == group]
    eval_sets = sorted({r["eval_set"] for r in rows})
    panels = [
        (e, m)
        for e in eval_sets
        for m in metrics
        if any(r.get(m) is not None for r in rows if r["eval_set"] == e)
    ]
    if not panels:
        panels = [("", metrics[0])]
    cols = min(3, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.6 * cols, 3.2 * nrows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (es, metric) in zip(axes.flat, panels, strict=False):
        sub = [r for r in rows if r["eval_set"] == es and r.get(metric) is not None]
        runs = sorted(
            {r["run"] for r in sub}, key=lambda r: ("base", "icl", "ft").index(variant_kind(r))
        )
        labels = sorted({r.get(label_col) or "전체" for r in sub}) if label_col else ["overall"]
        width = 0.8 / max(1, len(runs))
        for i, run in enumerate(runs):
            vals = []
            for lab in labels:
                hit = [
                    r
                    for r in sub
                    if r["run"] == run and (not label_col or (r.get(label_col) or "전체") == lab)
                ]
                vals.append(hit[0][metric] if hit else 0.0)
            xs = [x + (i - (len(runs) - 1) / 2) * width for x in range(len(labels))]
            ax.bar(xs, vals, width, label=run, color=RUN_COLORS.get(variant_kind(run)))
        ax.set_xticks(range(len(labels)), labels, rotation=15 if label_col else 0)
        ax.set_ylim(0, 1)
        ax.set_title(f"{es}\n{metric}", fontsize=9)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save(fig, stem)


def forest(comparisons: list[dict[str, Any]], stem: str | Path) -> list[str]:
    """All paired differences (B - A) with their 95% intervals."""
    setup_fonts()
    comps = sorted(comparisons, key=lambda c: (c["eval_set"], c["metric"], c["run_a"], c["run_b"]))
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * max(4, len(comps)) + 1))
    for y, c in enumerate(comps):
        lo, hi = c["ci"]
        sig = c.get("p_holm", 1.0) < 0.05
        ax.plot([lo, hi], [y, y], color="#d84315" if sig else "#455a64", lw=2)
        ax.plot(c["diff"], y, "o", color="#d84315" if sig else "#455a64")
    ax.axvline(0, color="k", lw=0.8, ls="--")
    ax.set_yticks(
        range(len(comps)),
        [
            f"{c['eval_set']} · {c['metric']} · {c['run_b'].split(':', 1)[-1]} - {c['run_a'].split(':', 1)[-1]}"
            for c in comps
        ],
        fontsize=7,
    )
    ax.invert_yaxis()
    ax.set_xlabel("paired difference B - A (95% CI); red: Holm-adjusted p < .05")
    fig.tight_layout()
    return save(fig, stem)


def power_curves(power: dict[str, Any], stem: str | Path) -> list[str]:
    """Minimum detectable difference (80% power, alpha .05) against the number of items."""
    setup_fonts()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    rows = power["mde_curve"]
    for psi in sorted({r["p_disc"] for r in rows}):
        pts = [
            (r["n"], r["mde_mcnemar"])
            for r in rows
            if r["p_disc"] == psi and r["mde_mcnemar"] is not None
        ]
        ax.plot(*zip(*pts, strict=True), label=f"paired (McNemar), discordance {psi:.0%}")
    unp = sorted({(r["n"], r["mde_unpaired"]) for r in rows if r.get("mde_unpaired") is not None})
    if unp:
        ax.plot(*zip(*unp, strict=True), "k--", label="unpaired, base accuracy 55%")
    marks = [m if isinstance(m, dict) else {"n": m, "label": ""} for m in power["study_ns"]]
    for j, m in enumerate(sorted(marks, key=lambda m: m["n"])):
        n = m["n"]
        ax.axvline(n, color="#bdbdbd", lw=0.8)
        ax.text(
            n,
            0.005 + 0.06 * (j % 2),
            f"n={n:,} {m['label']}".strip(),
            rotation=90,
            fontsize=7,
            va="bottom",
            ha="left" if j % 2 == 0 else "right",
        )
    ax.axhline(0.03, color="#d84315", lw=1, ls=":", label="+3.0%p")
    ax.set_xscale("log")
    ax.set_ylim(0, 0.3)
    _label(ax, "items (paired)", "minimum detectable difference", legend_size=7)
    fig.tight_layout()
    return save(fig, stem)


def domain_accuracy_figure(
    comparisons_by_domain: list[dict[str, Any]], stem: str | Path
) -> list[str]:
    """Per-department accuracy of each run with bootstrap intervals."""
    setup_fonts()
    rows = comparisons_by_domain
    domains = sorted({r["domain"] for r in rows})
    runs = sorted(
        {r["run"] for r in rows}, key=lambda r: ("base", "icl", "ft").index(variant_kind(r))
    )
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    width = 0.8 / max(1, len(runs))
    for i, run in enumerate(runs):
        for x, dom in enumerate(domains):
            hit = [r for r in rows if r["run"] == run and r["domain"] == dom]
            if not hit:
                continue
            r = hit[0]
            xx = x + (i - (len(runs) - 1) / 2) * width
            ax.bar(
                xx,
                r["mean"],
                width,
                color=RUN_COLORS.get(variant_kind(run)),
                label=run if x == 0 else None,
            )
            ax.errorbar(
                xx,
                r["mean"],
                yerr=[[r["mean"] - r["ci"][0]], [r["ci"][1] - r["mean"]]],
                color="k",
                capsize=2,
                lw=0.8,
            )
    ax.set_xticks(range(len(domains)), [f"{d}" for d in domains])
    ax.set_ylim(0, 1)
    ax.set_ylabel("MCQ accuracy (strict), 95% CI")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, stem)
