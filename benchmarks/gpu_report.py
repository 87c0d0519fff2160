"""The GPU suite's report: the study's projected cost from the measured rates, and the
Markdown summary written beside ``gpu_suite.json`` (:mod:`gpu_suite` calls both)."""

from __future__ import annotations

import json
from pathlib import Path

import demo_dag

STUDY_GEN_BATCH = 32  # experiments/essential_medical.yaml, evaluation.generation.batch_size
TEST_ITEMS = {"aihub-test": 1728, "kormedmcqa-test": 3009}  # × base + fine-tuned


def study_projection(runs: list[dict]) -> dict:
    """The study's generation cost: its base run on the bf16 model (the merged variant costs
    the same), its fine-tuned run on NF4 + the unmerged adapter, both on all test sets."""

    def rate(variant, batch):
        hit = [r for r in runs if r["variant"] == variant and r["batch"] == batch]
        return hit[0]["items_per_s"] if hit else None

    items_n = sum(TEST_ITEMS.values())
    batch = max(r["batch"] for r in runs) if runs else None
    study_batch = STUDY_GEN_BATCH if any(r["batch"] == STUDY_GEN_BATCH for r in runs) else batch
    out = {"items_per_run": items_n, "basis": {}, "graph_speedup": {}, "lookup_cost": {}}
    for r in runs:  # the same model, the same run: the one-token eager engine ÷ the other
        eager = rate("merged", r["batch"])
        if r["variant"] == "merged-graph" and eager:
            out["graph_speedup"][str(r["batch"])] = r["items_per_s"] / eager
        if r["variant"] == "merged-lookup" and eager:  # random weights: few guesses kept
            out["lookup_cost"][str(r["batch"])] = eager / r["items_per_s"]
    for b, key in ((study_batch, "study_batch"), (batch, "largest_batch")):
        base = rate("merged", b)
        ft = rate("nf4-unmerged", b) or rate("unmerged", b)
        out["basis"][key] = {
            "batch": b,
            "base_min": items_n / base / 60 if base else None,
            "ft_min": items_n / ft / 60 if ft else None,
            "ft_variant": "nf4-unmerged" if rate("nf4-unmerged", b) else "unmerged",
        }
    return out


def save(res: dict, out: Path) -> None:
    (out / "gpu_suite.json").write_text(json.dumps(res, indent=2), encoding="utf-8")
    (out / "gpu_suite.md").write_text(markdown(res), encoding="utf-8")


def _f(x, fmt=".2f"):
    return "–" if x is None else format(x, fmt)


def markdown(res: dict) -> str:
    what = "dry run on CPU: numbers mean nothing" if res["dry"] else res["device"]
    lines = [f"# GPU suite ({what})", ""]
    c = res.get("ceilings")
    if c:
        lines += [
            f"Ceilings {'measured on the card' if c['measured'] else '(datasheet)'}: HBM "
            f"{c['hbm_bytes_per_s'] / 1e12:.2f} TB/s, bf16 {c['bf16_flops'] / 1e12:.0f} TFLOP/s "
            f"(datasheet {c['datasheet']['hbm_bytes_per_s'] / 1e12:.1f} TB/s, "
            f"{c['datasheet']['bf16_flops'] / 1e12:.0f} TFLOP/s).",
            "",
        ]
    t = res.get("training")
    if t and "steps" in t:
        mem = (t.get("peak_memory") or {}).get("gpu_peak_allocated_mib")
        lines += [
            "| QLoRA training, Qwen2.5-7B shapes, as study 001 | value |",
            "| --- | ---: |",
            f"| optimizer steps timed | {t['steps']} |",
            f"| first step (warm-up), s | {_f(t['first_step_s'])} |",
            f"| median later step (2 × 8 × 1,024 tokens), s | {t['s_per_optimizer_step']:.2f} |",
            f"| × its bf16 compute bound ({t['bound_s_per_step']:.2f} s) | "
            f"{t['ratio_to_bound']:.1f} |",
            f"| peak GPU memory allocated, GiB | {_f(mem and mem / 1024, '.1f')} |",
            f"| projected: 3 epochs on 13,824 items "
            f"({t['study_optimizer_steps']:.0f} steps), h | {t['projected_study_training_h']:.2f} |",
            "",
        ]
    g = res.get("generation")
    if g:
        lines += [
            f"Generation, {g['new_tokens']} new tokens forced per item, one batch per row "
            f"(model loads, s: {', '.join(f'{k} {v:.0f}' for k, v in g['loads'].items())}):",
            "",
            "| base + adapter | batch | prompt tok | s | tokens/s | items/s | bound tokens/s "
            "| × bound | peak GiB |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in g["runs"]:
            lines.append(
                f"| {r['variant']} | {r['batch']} | {r['prompt_tokens']} | {r['generate_s']:.1f} "
                f"| {r['tokens_per_s']:.0f} | {r['items_per_s']:.2f} | "
                f"{r['bound_tokens_per_s']:.0f} | {r['ratio_to_bound']:.1f} | "
                f"{_f(r['gpu_peak_gib'], '.1f')} |"
            )
        lines += [f"\nSkipped: {'; '.join(g['skipped'])}." if g["skipped"] else "", ""]
        if g.get("step_probe"):
            lines += [
                "| decode step of the merged model, outside the engine | batch | eager ms "
                "| CUDA graph ms | bound ms |",
                "| --- | ---: | ---: | ---: | ---: |",
            ]
            for p in g["step_probe"]:
                graph = _f(p.get("graph_step_s") and 1000 * p["graph_step_s"], ".1f")
                lines.append(
                    f"| | {p['batch']} | {1000 * p['eager_step_s']:.1f} | "
                    f"{graph if 'graph_error' not in p else 'failed: ' + p['graph_error'][:80]} "
                    f"| {1000 * p['bound_step_s']:.2f} |"
                )
            lines.append("")
        s = g["study"]
        for key, b in s["basis"].items():
            lines.append(
                f"- All test sets ({s['items_per_run']:,} items) at batch {b['batch']} "
                f"({key.replace('_', ' ')}): base run {_f(b['base_min'], '.1f')} min, "
                f"fine-tuned run ({b['ft_variant']}) {_f(b['ft_min'], '.1f')} min."
            )
        if s.get("graph_speedup"):
            lines.append(
                "- kmedqa.generation.graphs (CUDA graphs) over the eager engine, merged model: "
                + ", ".join(f"batch {b} {x:.2f}×" for b, x in s["graph_speedup"].items())
                + "."
            )
        if s.get("lookup_cost"):
            lines.append(
                "- Feeding prompt-lookup guesses (random weights keep few of them), merged model, "
                "time over the one-token engine's: "
                + ", ".join(f"batch {b} {x:.2f}×" for b, x in s["lookup_cost"].items())
                + "."
            )
        lines.append("")
    if res.get("demo_dag"):
        lines += demo_dag.markdown(res["demo_dag"]) + [""]
    lines += [f"Suite wall time {res.get('total_s', 0):.0f} s.", ""]
    return "\n".join(lines)
