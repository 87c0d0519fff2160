"""Table 5 of the essential-medical study from judge rows: base vs fine-tuned, per criterion.

For each rubric criterion: the mean score of the base and the fine-tuned run over the
items *both* runs have a valid (``ok``) score for, the paired difference (fine-tuned −
base) with a seeded percentile paired-bootstrap CI (:func:`kmedqa.stats.paired.paired_bootstrap`),
``n`` pairs, and how many replies were invalid per run (excluded, never imputed). When
the judge did not run, the table says ``Judge not run: <reason>`` instead of numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kmedqa.errors import InputError
from kmedqa.judge.rubric import DEFAULT_RUBRIC, Rubric, load_rubric
from kmedqa.paper.tables import tex_escape
from kmedqa.stats.paired import paired_bootstrap

latex_escape = tex_escape  # one escaper for every table of the paper


def _fmt(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "–"
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def _not_run_reason(
    rows: list[dict[str, Any]], summary: dict[str, Any] | None, runs: tuple[str, str]
) -> str | None:
    if summary is not None and summary.get("status") == "not_run":
        return str(summary.get("reason") or "no reason recorded")
    mine = [r for r in rows if r.get("run") in runs]
    if not mine:
        return None
    if all(r.get("status") == "not_run" for r in mine):
        return str(mine[0].get("error") or "no reason recorded")
    return None


def table5_data(
    rows: Iterable[dict[str, Any]],
    base_run: str,
    finetuned_run: str,
    *,
    summary: dict[str, Any] | None = None,
    rubric: Rubric | None = None,
    n_resamples: int = 10_000,
    seed: int = 42,
    ci: float = 0.95,
) -> dict[str, Any]:
    """The numbers behind Table 5 (a dict; see :func:`table5` for the rendered strings)."""
    rows = list(rows)
    rubric = rubric or load_rubric(DEFAULT_RUBRIC)
    runs = (base_run, finetuned_run)
    model = next((r.get("judge_model") for r in rows if r.get("run") in runs), None)
    if summary is not None:
        model = summary.get("judge_model") or model
    out: dict[str, Any] = {
        "base_run": base_run,
        "finetuned_run": finetuned_run,
        "judge_model": model,
        "rubric_id": rubric.id,
        "rubric_version": rubric.version,
        "n_resamples": n_resamples,
        "seed": seed,
        "ci_level": ci,
    }
    reason = _not_run_reason(rows, summary, runs)
    if reason is not None:
        out.update(status="not_run", reason=reason, criteria=[])
        return out
    present = {r.get("run") for r in rows}
    for run in runs:
        if run not in present:
            raise InputError(
                f"no judge rows for run {run!r} (runs present: {sorted(map(str, present))})",
                field="run",
            )
    by_run: dict[str, dict[str, dict[str, Any]]] = {run: {} for run in runs}
    for r in rows:
        if r.get("run") in by_run:
            by_run[r["run"]][r["id"]] = r
    base, ft = by_run[base_run], by_run[finetuned_run]
    pair_ids = sorted(
        i for i in base.keys() & ft.keys() if base[i]["status"] == "ok" and ft[i]["status"] == "ok"
    )
    invalid = {
        run: sum(1 for r in by_run[run].values() if r.get("status") == "invalid") for run in runs
    }
    crits = []
    for c in rubric.criteria:
        k = c["key"]
        a = [float(base[i][k]) for i in pair_ids]
        b = [float(ft[i][k]) for i in pair_ids]
        entry: dict[str, Any] = {
            "key": k,
            "name_ko": c["name_ko"],
            "name_en": c["name_en"],
            "n": len(pair_ids),
            "invalid_base": invalid[base_run],
            "invalid_finetuned": invalid[finetuned_run],
            "mean_base": None,
            "mean_finetuned": None,
            "diff": None,
            "ci": None,
        }
        if pair_ids:
            boot = paired_bootstrap(
                a, b, n_resamples=n_resamples, seed=seed, ci=ci, method="percentile"
            )
            entry.update(
                mean_base=sum(a) / len(a),
                mean_finetuned=sum(b) / len(b),
                diff=float(boot["diff"]),
                ci=[float(boot["ci"][0]), float(boot["ci"][1])],
            )
        crits.append(entry)
    out.update(status="ok", reason=None, n_pairs=len(pair_ids), criteria=crits)
    return out


def render_markdown(data: dict[str, Any]) -> str:
    title = (
        f"Table 5. LLM judge ({data.get('judge_model') or 'unknown model'}, rubric "
        f"{data['rubric_id']} v{data['rubric_version']}): {data['base_run']} vs {data['finetuned_run']}"
    )
    if data["status"] == "not_run":
        return f"{title}\n\nJudge not run: {data['reason']}\n"
    pct = f"{round(data['ci_level'] * 100)}%"
    lines = [
        title,
        "",
        f"| Criterion | Base | Fine-tuned | Δ (FT − base) | {pct} CI | n | invalid (base/FT) |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for c in data["criteria"]:
        ci = "–" if c["ci"] is None else f"[{c['ci'][0]:+.2f}, {c['ci'][1]:+.2f}]"
        lines.append(
            f"| {c['name_ko']} ({c['name_en']}) | {_fmt(c['mean_base'])} | {_fmt(c['mean_finetuned'])} "
            f"| {_fmt(c['diff'], True)} | {ci} | {c['n']} | {c['invalid_base']}/{c['invalid_finetuned']} |"
        )
    lines += [
        "",
        f"Scores 1–5. Means over the {data['n_pairs']} items both runs have a valid judge score for; "
        f"{pct} CI: paired bootstrap ({data['n_resamples']:,} resamples, seed {data['seed']}, percentile). "
        "Invalid judge replies are excluded, never imputed.",
    ]
    return "\n".join(lines) + "\n"


def render_latex(data: dict[str, Any], label: str = "tab:judge") -> str:
    model = latex_escape(data.get("judge_model") or "unknown model")
    caption = (
        f"LLM judge scores (1--5; judge {model}, rubric {latex_escape(data['rubric_id'])} "
        f"v{latex_escape(data['rubric_version'])}): {latex_escape(data['base_run'])} vs "
        f"{latex_escape(data['finetuned_run'])}."
    )
    head = [r"\begin{table}[t]", r"\centering", rf"\caption{{{caption}}}", rf"\label{{{label}}}"]
    if data["status"] == "not_run":
        body = [
            r"\begin{tabular}{p{0.9\linewidth}}",
            r"\toprule",
            rf"Judge not run: {latex_escape(data['reason'])} \\",
            r"\bottomrule",
            r"\end{tabular}",
        ]
        return "\n".join(head + body + [r"\end{table}"]) + "\n"
    pct = f"{round(data['ci_level'] * 100)}\\%"
    body = [
        r"\begin{tabular}{lrrrlrr}",
        r"\toprule",
        rf"Criterion & Base & Fine-tuned & $\Delta$ & {pct} CI & $n$ & Invalid \\",
        r"\midrule",
    ]
    for c in data["criteria"]:
        ci = "--" if c["ci"] is None else f"[{c['ci'][0]:+.2f}, {c['ci'][1]:+.2f}]"
        body.append(
            f"{latex_escape(c['name_en'])} & {_fmt(c['mean_base']).replace('–', '--')} & "
            f"{_fmt(c['mean_finetuned']).replace('–', '--')} & {_fmt(c['diff'], True).replace('–', '--')} & "
            f"{ci} & {c['n']} & {c['invalid_base']}/{c['invalid_finetuned']} \\\\"
        )
    body += [
        r"\bottomrule",
        r"\end{tabular}",
        (
            rf"\par\smallskip\footnotesize Means over the {data['n_pairs']} items with valid scores in both runs; "
            rf"CI: paired bootstrap ({data['n_resamples']} resamples, seed {data['seed']}, percentile). "
            r"Invalid judge replies (base/fine-tuned) are excluded, not imputed."
        ),
    ]
    return "\n".join(head + body + [r"\end{table}"]) + "\n"


def table5(
    rows: Iterable[dict[str, Any]],
    base_run: str,
    finetuned_run: str,
    *,
    label: str = "tab:judge",
    **options: Any,
) -> dict[str, Any]:
    """``{"data": ..., "markdown": str, "latex": str}`` for Table 5; ``options`` are those
    of :func:`table5_data` (summary, rubric, n_resamples, seed, ci)."""
    data = table5_data(rows, base_run, finetuned_run, **options)
    return {
        "data": data,
        "markdown": render_markdown(data),
        "latex": render_latex(data, label=label),
    }
