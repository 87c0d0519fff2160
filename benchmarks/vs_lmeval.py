"""kmedqa's engine against lm-evaluation-harness 0.4.13, at the harness's own task definition.

Run from the repository root after the demo's model and KorMedMCQA split exist
(``snakemake --cores 1 results/models/gemma3-270m/model.json
results/data/kormedmcqa_demo/test.jsonl``)::

    PYTHONPATH=src .venv/bin/python benchmarks/vs_lmeval.py \\
        [--order ABCCBA] [--threads 2] [-o benchmarks/results/vs_lmeval_cpu.json]

One process, one loaded model (the demo's Gemma 3 270M), the demo's 61 KorMedMCQA-style
items, batch 16, greedy:

* A = the harness: ``simple_evaluate`` with its HF backend on a verbatim local copy of
  its ``kormedmcqa`` v3 task (``dataset_path: json``), ``--apply_chat_template``,
  ``max_gen_toks: 1024``, its stop strings; timed inside ``generate_until``.
* B = kmedqa: :func:`kmedqa.generation.generate` (the engine ``kmedqa bench-generate``
  times) with the compat format ``kormedmcqa_lmeval_chat``, its default settings
  (``prompt_lookup`` guesses included) and a fresh cache; timed around the call (prompt
  rendering and tokenization included).
* C = kmedqa as B, one token per decode step (``prompt_lookup: 0``).

An untimed warm-up generation comes first. ``--order`` interleaves them (ABCCBA:
harness, kmedqa, kmedqa one token per step, the same again backwards), so a machine
whose load changes during the run weighs on all. The report has each run's items/s,
the ratios of the medians, the load averages seen, and for each kmedqa variant the
item-by-item comparison with the harness: prompt strings, generated texts, and harness
``exact_match`` vs kmedqa ``mcq_strict``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

FORMAT = "kormedmcqa_lmeval_chat"
TASK = "kormedmcqa_demo_local"


TOOLS = {"B": "kmedqa", "C": "kmedqa prompt_lookup 0"}
STAT_KEYS = (
    "new_tokens",
    "decode_steps",
    "decode_row_steps",
    "draft_tokens_fed",
    "draft_tokens_kept",
)


def _load() -> float:
    return os.getloadavg()[0]


def agreement(harness_samples, rows, items, prompts) -> dict:
    """Item by item, the harness's samples against one kmedqa run's rows."""
    from kmedqa.interop.lmeval import sample_context, sample_output
    from kmedqa.scoring import score_items

    by_id = {r["id"]: r for r in rows}
    scores = {r["id"]: r for r in score_items(items, rows)}
    same_prompt = same_text = same_correct = 0
    differ = []
    for s in harness_samples:
        iid = s["doc"]["id"]
        sp = sample_context(s) == prompts[iid]
        st = sample_output(s) == by_id[iid]["output"]
        sc = float(s["exact_match"]) == float(scores[iid]["mcq_strict"])
        same_prompt, same_text, same_correct = same_prompt + sp, same_text + st, same_correct + sc
        if not (sp and st and sc):
            differ.append({"id": iid, "lm_eval": sample_output(s), "kmedqa": by_id[iid]["output"]})
    return {
        "same_prompt": same_prompt,
        "same_text": same_text,
        "same_correctness": same_correct,
        "n_items": len(harness_samples),
        "differing": differ,
        "lm_eval_exact_match": sum(float(s["exact_match"]) for s in harness_samples),
        "kmedqa_mcq_strict": sum(float(r["mcq_strict"]) for r in scores.values()),
        "mean_output_tokens_kmedqa": sum(r["n_new_tokens"] for r in rows) / len(rows),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-json", default="results/models/gemma3-270m/model.json")
    ap.add_argument("--items", default="results/data/kormedmcqa_demo/test.jsonl")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument(
        "--order",
        default="ABCCBA",
        help="A = lm-eval, B = kmedqa, C = kmedqa with prompt_lookup 0 (default ABCCBA)",
    )
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    ap.add_argument("-o", "--output", default="benchmarks/results/vs_lmeval_cpu.json")
    args = ap.parse_args()
    if bad := sorted(set(args.order) - {"A", *TOOLS}):
        ap.error(f"--order {args.order}: unknown {bad}; want letters of A, B, C")

    import torch

    from kmedqa.generation import GenerationSettings, generate, render_prompts
    from kmedqa.generation.bench import cpu_name, engine_versions
    from kmedqa.interop.lmeval import (
        kormedmcqa_rows,
        run_harness,
        write_local_task,
    )
    from kmedqa.io import dumps
    from kmedqa.items import read_items
    from kmedqa.models import load_model, load_tokenizer, read_model_info

    if args.threads:
        torch.set_num_threads(args.threads)
    info = read_model_info(args.model_json)
    model, tok = load_model(info, device="cpu"), load_tokenizer(info)
    model.eval()
    items = read_items(args.items)
    n = len(items)
    tmp = Path(tempfile.mkdtemp(prefix="kmedqa-vs-lmeval-"))
    data = tmp / "test.jsonl"
    data.write_text("".join(dumps(r) + "\n" for r in kormedmcqa_rows(items)), encoding="utf-8")
    # zero-shot: the task's `fewshot` split must exist but is not read
    task_dir = write_local_task(tmp / "tasks", TASK, {"test": data, "fewshot": data})

    # untimed warm-up on the shared model (first-call kernel selection, allocator growth)
    generate(
        model_json=args.model_json, items=items[: args.batch_size], formats={}, run="warmup",
        eval_set="bench", out_path=str(tmp / "warmup.jsonl"), cache_dir=str(tmp / "cache-w"),
        settings=GenerationSettings(batch_size=args.batch_size, max_new_tokens={"mcq": 2}), progress=False, model=model, tokenizer=tok,
        format_override=FORMAT,
    )  # fmt: skip
    runs: list[dict] = []
    harness_samples, kmedqa_rows = None, {}
    loads = [_load()]
    for j, who in enumerate(args.order):
        if who == "A":
            samples, gen_s = run_harness(
                model, tok, task_dir, TASK, batch_size=args.batch_size, apply_chat_template=True
            )
            harness_samples = harness_samples or samples
            runs.append({"tool": "lm-eval", "generate_s": gen_s, "items_per_s": n / gen_s})
        else:
            tool = TOOLS[who]
            out = tmp / f"kmedqa{j}.jsonl"
            knobs = {"prompt_lookup": 0} if who == "C" else {}
            t0 = time.perf_counter()
            stats = generate(
                model_json=args.model_json, items=items, formats={}, run="bench",
                eval_set="bench", out_path=str(out), cache_dir=str(tmp / f"cache{j}"),
                settings=GenerationSettings(batch_size=args.batch_size, **knobs), progress=False,
                model=model, tokenizer=tok, format_override=FORMAT,
            )  # fmt: skip
            wall = time.perf_counter() - t0
            kmedqa_rows.setdefault(tool, [json.loads(x) for x in out.read_text().splitlines()])
            runs.append(
                {"tool": tool, "generate_s": wall, "items_per_s": n / wall}
                | {k: stats.get(k) for k in STAT_KEYS if k in stats}
            )
        loads.append(_load())
        print(f"{runs[-1]['tool']}: {runs[-1]['generate_s']:.1f}s (load {loads[-1]:.1f})")

    report: dict = {
        "model": info["name"],
        "dtype": info.get("dtype"),
        "n_items": n,
        "batch_size": args.batch_size,
        "task": "lm-eval 0.4.13 kormedmcqa v3 (local copy), --apply_chat_template, "
        "max_gen_toks 1024, until [Q:, </s>, <|im_end|>, ., \\n\\n]",
        "kmedqa_format": FORMAT,
        "kmedqa_prompt_lookup": GenerationSettings().prompt_lookup,
        "order": args.order,
        "runs": runs,
        "device_name": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_avg_1m_seen": loads,
        "versions": engine_versions(),
    }
    med = {
        t: statistics.median(r["items_per_s"] for r in runs if r["tool"] == t)
        for t in ("lm-eval", *TOOLS.values())
        if any(r["tool"] == t for r in runs)
    }
    report["items_per_s_median"] = med
    if "lm-eval" in med:
        report["speedup"] = {t: v / med["lm-eval"] for t, v in med.items() if t != "lm-eval"}
    if harness_samples and kmedqa_rows:
        prompts = {
            p["id"]: p["text"] for p in render_prompts(items, tok, {}, format_override=FORMAT)
        }
        report["agreement"] = {
            tool: agreement(harness_samples, rows, items, prompts)
            for tool, rows in kmedqa_rows.items()
        }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"items/s (medians): {', '.join(f'{t} {v:.2f}' for t, v in med.items())}")
    for tool, x in report.get("speedup", {}).items():
        agree = report.get("agreement", {}).get(tool)
        print(
            f"{tool}: {x:.2f}x lm-eval"
            + (
                f"; same prompt/text/correctness {agree['same_prompt']}/{agree['same_text']}/"
                f"{agree['same_correctness']} of {agree['n_items']}"
                if agree
                else ""
            )
        )
    print(f"-> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
