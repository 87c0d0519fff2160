"""The paper's significance tables: every paired comparison (with seed-aware rows where runs
have several seeds) and what the published aggregates allow for the 3.0%p question."""

from __future__ import annotations

from typing import Any

from kmedqa.paper.tables import Table, fmt_ci, fmt_p


def significance_table(
    comparisons: list[dict[str, Any]], seeded: list[dict[str, Any]] | None = None
) -> Table:
    """Every paired comparison; with ``seeded`` (runs with several seeds, kmedqa.stats.seeds)
    a last column says which interval a claim rests on, and the seed-aware rows follow."""
    t = Table(
        "significance",
        "Paired comparisons (B − A): 95% paired bootstrap CI, exact McNemar (0/1 metrics) or sign-flip permutation p, Holm-adjusted within eval set × metric",
        [
            "eval set",
            "metric",
            "A",
            "B",
            "n",
            "mean A",
            "mean B",
            "B − A",
            "95% CI",
            "test",
            "p",
            "p (Holm)",
        ],
        align="llllrrrrlrrr",
    )
    if seeded:
        t.columns.append("CI over")
        t.align += "l"
    for c in sorted(
        comparisons, key=lambda c: (c["eval_set"], c["metric"], c["run_a"], c["run_b"])
    ):
        row = [
            c["eval_set"],
            c["metric"],
            c["run_a"],
            c["run_b"],
            c["n"],
            c["mean_a"],
            c["mean_b"],
            f"{c['diff']:+.3f}",
            fmt_ci(c["ci"]),
            c.get("primary_test", ""),
            fmt_p(c.get("p_primary")),
            fmt_p(c.get("p_holm")),
        ]
        t.rows.append(row + (["items (one training run)"] if seeded else []))
    for c in sorted(
        [c for c in seeded or [] if max(len(c["seeds_a"]), len(c["seeds_b"])) > 1],
        key=lambda c: (c["eval_set"], c["metric"], c["run_a"], c["run_b"]),
    ):
        t.rows.append(
            [
                c["eval_set"],
                c["metric"],
                f"{c['run_a']} ({len(c['seeds_a'])} seed{'s' if len(c['seeds_a']) > 1 else ''})",
                f"{c['run_b']} ({len(c['seeds_b'])} seed{'s' if len(c['seeds_b']) > 1 else ''})",
                c["n"],
                c["mean_a"],
                c["mean_b"],
                f"{c['diff']:+.3f}",
                fmt_ci(c["ci_two_level"]),
                "two-level bootstrap",
                "–",
                "–",
                f"seeds+items (item-only: {fmt_ci(c['ci_items'])})",
            ]
        )
    if seeded:
        t.notes.append(
            "CI over: 'items' rows treat one fine-tune as fixed (another test set, same "
            "training run); 'seeds+items' rows resample the seeds, then the items (another "
            "test set and another training run). A gain is robust to training randomness "
            "only where the seeds+items interval excludes 0."
        )
    if not comparisons:
        t.notes.append("No pairs of runs to compare in this config.")
    return t


def three_pp_table(p3: dict[str, Any], seeded: list[dict[str, Any]] | None = None) -> Table:
    """The published aggregates' answer; with ``seeded`` (this config's KorMedMCQA base vs
    fine-tuned comparisons over seeds) the answer the study could have had."""
    u = p3["unpaired"]
    pr = p3["paired"]
    t = Table(
        "three_pp",
        "KorMedMCQA doctor, 110/200 (55.0%) vs 116/200 (58.0%): what the published aggregates allow",
        ["analysis", "value"],
    )
    t.rows += [
        ["unpaired two-proportion z-test, p", fmt_p(u["p_z"])],
        ["Fisher's exact test (unpaired), p", fmt_p(u["p_fisher"])],
        ["discordant pairs consistent with the totals", f"{pr['d_min']}–{pr['d_max']}"],
        [
            f"exact McNemar p, smallest (n10={pr['p_min_at']['n10']}, n01={pr['p_min_at']['n01']})",
            fmt_p(pr["p_min"]),
        ],
        [
            f"exact McNemar p, largest (n10={pr['p_max_at']['n10']}, n01={pr['p_max_at']['n01']})",
            fmt_p(pr["p_max"]),
        ],
        ["configurations with p < 0.05", f"{pr['n_significant']}"],
    ]
    for r in pr["at_p_disc"]:
        t.rows.append(
            [
                f"exact McNemar p at discordance {r['p_disc']:.0%} (n10={r['n10']}, n01={r['n01']})",
                fmt_p(r["p_mcnemar"]),
            ]
        )
    for r in p3["required_n"]["paired"]:
        t.rows.append(
            [
                f"items needed for +3.0%p at 80% power (paired, discordance {r['p_disc']:.0%})",
                f"{r['n']:,}",
            ]
        )
    t.rows.append(
        [
            "items needed per group for +3.0%p (unpaired)",
            f"{p3['required_n']['unpaired_per_group']:,}",
        ]
    )
    for r in p3["mde_at_n"]["paired"]:
        t.rows.append(
            [
                f"smallest detectable difference with 200 items (paired, discordance {r['p_disc']:.0%})",
                f"{r['mde'] * 100:.1f}%p",
            ]
        )
    t.rows.append(
        [
            "smallest detectable difference with 200 items per group (unpaired)",
            f"{p3['mde_at_n']['unpaired'] * 100:.1f}%p",
        ]
    )
    for c in seeded or []:
        per = [b - c["mean_a"] for b in c["per_seed_b"]] if len(c["seeds_a"]) == 1 else None
        head = f"this config, {c['eval_set']} (n={c['n']:,}): {c['run_b']} − {c['run_a']}"
        if per:
            t.rows.append(
                [f"{head}, per seed {c['seeds_b']}", ", ".join(f"{d * 100:+.1f}%p" for d in per)]
            )
        sd = "" if c["sd_b"] is None else f" (sd of B over seeds {c['sd_b'] * 100:.1f}%p)"
        t.rows.append([f"{head}, mean over seeds{sd}", f"{c['diff'] * 100:+.1f}%p"])
        t.rows.append([f"{head}, 95% CI over items only", _pp_ci(c["ci_items"])])
        t.rows.append([f"{head}, 95% CI over seeds and items", _pp_ci(c["ci_two_level"])])
    return t


def _pp_ci(ci: list[float]) -> str:
    verdict = "excludes 0" if ci[0] > 0 or ci[1] < 0 else "includes 0"
    return f"[{ci[0] * 100:+.1f}, {ci[1] * 100:+.1f}]%p ({verdict})"
