"""What a 7B study costs on one GPU: QLoRA steps and generation at Qwen2.5-7B-Instruct's shapes.

    PYTHONPATH=src python benchmarks/gpu_suite.py --out benchmarks/results      # one H200, ~8 min
    PYTHONPATH=src python benchmarks/gpu_suite.py --dry --out /tmp/suite         # CPU, tiny, seconds

Hub weights cannot be fetched (here or on a lent GPU machine), but a model built from the
published ``config.json`` with random weights has the real shapes and so the real cost per
token. The suite

1. checks its prerequisites first (CUDA, bitsandbytes, trl, peft, snakemake and what the
   DAG's jobs import, free GPU memory) and stops in seconds with one line naming what is
   missing, so no device time is wasted;
2. runs the demo's DAG on CUDA with QLoRA as study 001 runs it (``experiments/demo_gpu.yaml``:
   NF4, double quant, bf16 compute, paged AdamW 8-bit, gradient checkpointing; Gemma 3 270M's
   architecture with random weights built on the device, since the GGUF cannot be carried)
   through Snakemake, and reads each job's time from its benchmark file
   (:mod:`benchmarks.demo_dag`; ``--dag all`` runs scoring and the paper too, ``--dag none``
   skips it);
3. builds Qwen2.5-7B-Instruct's architecture (hidden 3584, 28 layers, 28 query / 4 KV heads,
   intermediate 18944, vocab 152,064) with random bf16 weights and saves it;
4. trains it with :func:`kmedqa.training.train` as ``experiments/essential_medical.yaml`` does
   (NF4 + double quant + bf16 compute, LoRA r16 α32 on the seven projections, batch 2 ×
   accumulation 8, length 1,024 — every example padded/filled to 1,024 tokens —, paged AdamW
   8-bit, gradient checkpointing) for a few optimizer steps → seconds per step, peak memory,
   and the projected time of the study's 3 epochs on 13,824 items;
5. generates with kmedqa's engine (:func:`kmedqa.generation.generate`) at batch 1 / 32 / 128,
   every row forced to the same number of new tokens (random weights stop at random, so stop
   ids are switched off), with the unmerged and the merged adapter → tokens/s and the projected
   wall time of all test sets (AI Hub 1,728 + KorMedMCQA 3,009 items) × base + fine-tuned;
6. puts each figure beside its physical bound: decode vs HBM bandwidth ÷ bytes read per step,
   training vs peak bf16 FLOP/s (6 × parameters × tokens, + 2 × for recomputation).

Results go to ``OUT/gpu_suite.json`` and ``OUT/gpu_suite.md``. ``--dry`` runs the same code
on the CPU with tiny shapes, no quantization and two steps, so that the suite cannot rot (CI
runs it in tests/test_gpu_suite.py): the DAG is resolved with ``snakemake -n`` on the GPU
config and its ``materialize`` job runs for real with a tiny architecture. Its numbers mean
nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import demo_dag  # noqa: E402

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
QWEN7B = dict(  # Qwen/Qwen2.5-7B-Instruct config.json
    hidden_size=3584,
    intermediate_size=18944,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    vocab_size=152064,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=False,
)
TINY = dict(  # --dry: the same architecture, tiny
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, vocab_size=1024, max_position_embeddings=4096, tie_word_embeddings=False,
)  # fmt: skip
STUDY = {"train_items": 13824, "epochs": 3, "batch": 2, "accum": 8, "max_length": 1024}
TEST_ITEMS = {"aihub-test": 1728, "kormedmcqa-test": 3009}  # × base + fine-tuned
H200 = {"hbm_bytes_per_s": 4.8e12, "bf16_flops": 989e12}  # NVIDIA H200 SXM datasheet (dense)


def prerequisites(dry: bool, dag: str = "gpu") -> list[str]:
    """Everything that is missing, in one line each (empty: ready). Checked before anything
    runs, so that a device call without a package or a GPU ends in seconds."""
    needed = ["torch", "transformers", "peft", "trl", "accelerate", "datasets"]
    if not dry:
        needed.append("bitsandbytes")
    missing = [f"python package {m!r}" for m in needed if importlib.util.find_spec(m) is None]
    if dag != "none":
        missing += [m for m in demo_dag.missing_modules(dag, dry) if m not in missing]
    if missing:
        missing[-1] += " (carry wheels: benchmarks/README.md, 'GPU suite')"
    if dry or importlib.util.find_spec("torch") is None:
        return missing
    import torch

    if not torch.cuda.is_available():
        return ["a CUDA GPU (torch.cuda.is_available() is False)"] + missing
    free, _ = torch.cuda.mem_get_info()
    if free < 40 * 2**30:
        missing.append(f"40 GiB of free GPU memory (free: {free / 2**30:.1f} GiB)")
    return missing


def build_model(out: Path, shape: dict, dtype: str) -> Path:
    """Random weights in ``shape`` + the tiny offline tokenizer; returns model.json."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from kmedqa.testing import build_tiny_model

    hf = build_tiny_model(out / "hf")  # tokenizer (and a tiny model, overwritten below)
    tok = AutoTokenizer.from_pretrained(hf)
    torch.manual_seed(0)
    cfg = Qwen2Config(
        **shape,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        torch_dtype=dtype,
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = Qwen2ForCausalLM(cfg).to(getattr(torch, dtype))
    model.save_pretrained(hf)
    n_params = sum(p.numel() for p in model.parameters())
    del model
    info = {"name": "qwen2.5-7b-shape", "source": "local", "path": str(hf)}
    info.update(chat_template="gemma", dtype=dtype, spec={}, n_params=n_params)
    mj = out / "model.json"
    mj.write_text(json.dumps(info), encoding="utf-8")
    return mj


def items(n: int, words: int, task: str = "descriptive") -> list[dict]:
    """``n`` items whose prompts are about ``words`` tokens long under the tiny tokenizer."""
    from kmedqa.items import make_item

    text = " ".join(["the patient"] * (words // 2))
    return [
        make_item(
            id=f"bench-{i}",
            dataset="bench",
            task=task,
            domain="bench",
            q_type=task,
            question=f"{i} {text}",
            answer=" ".join(["answer"] * STUDY["max_length"]),
            meta={"format": "instruct"},
        )
        for i in range(n)
    ]


def bench_training(mj: Path, work: Path, dry: bool, steps: int) -> dict:
    import torch

    from kmedqa.testing import train_outputs
    from kmedqa.training import train

    args = {
        "max_steps": steps,
        "per_device_train_batch_size": STUDY["batch"],
        "gradient_accumulation_steps": 2 if dry else STUDY["accum"],
        "learning_rate": 2e-4,
        "lr_scheduler_type": "cosine",
        "warmup_ratio": 0.05,
        "weight_decay": 0.01,
        "max_length": 256 if dry else STUDY["max_length"],
        "optim": "adamw_torch" if dry else "paged_adamw_8bit",
        "gradient_checkpointing": not dry,
        "bf16": not dry,
        "logging_steps": 1,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": [],
    }
    training = {
        "quantization": "none" if dry else "nf4",
        "device": "cpu" if dry else "cuda",
        "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": TARGETS},
        "args": args,
    }
    n = steps * args["per_device_train_batch_size"] * args["gradient_accumulation_steps"]
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    summary = train(
        model_json=str(mj),
        train_items=items(n, 8 if dry else 200),  # the long answer fills max_length
        val_items=items(2, 16),
        formats={},
        training=training,
        seed=42,
        **train_outputs(work, "train_summary.json", "checkpoints"),
    )
    wall = time.perf_counter() - t0
    per_step = summary["wall_time_s"] / max(1, summary["global_steps"])
    study_steps = STUDY["epochs"] * STUDY["train_items"] / (STUDY["batch"] * STUDY["accum"])
    tokens_per_step = STUDY["batch"] * STUDY["accum"] * STUDY["max_length"]
    n_params = json.loads(mj.read_text())["n_params"]
    flops = 8 * n_params * tokens_per_step  # fwd 2 + bwd 4 + recompute 2 per parameter, token
    return {
        "steps": summary["global_steps"],
        "wall_s": wall,
        "s_per_optimizer_step": per_step,
        "peak_memory": summary.get("memory"),
        "study_optimizer_steps": study_steps,
        "projected_study_training_h": per_step * study_steps / 3600,
        "bf16_bound_s_per_step": flops / H200["bf16_flops"],
        "ratio_to_bound": per_step / (flops / H200["bf16_flops"]),
        "adapter": str(work / "adapter"),
    }


def bench_generation(mj: Path, adapter: str, work: Path, dry: bool, new_tokens: int) -> dict:
    import kmedqa.generation as gen
    import kmedqa.generation.runners as runners

    runners.stop_token_ids = lambda tok, model, **kw: []  # forced: every row decodes its budget
    n_params = json.loads(mj.read_text())["n_params"]
    out: dict = {"new_tokens": new_tokens, "runs": []}
    batches = (1, 2, 4) if dry else (1, 32, 128)
    for merged in (False, True):
        for bs in batches:
            n = bs * (1 if bs == 1 else 2)
            t0 = time.perf_counter()
            summary = gen.generate(
                model_json=str(mj),
                items=items(n, 8 if dry else 200),
                formats={},
                run="bench",
                eval_set=f"b{bs}-{'merged' if merged else 'unmerged'}",
                out_path=str(work / f"gen-{bs}-{merged}.jsonl"),
                cache_dir=str(work / f"cache-{bs}-{merged}"),
                adapter_dir=adapter,
                settings=gen.GenerationSettings(
                    merge_adapter=merged,
                    batch_size=bs,
                    device="cpu" if dry else "cuda",
                    max_new_tokens={"descriptive": new_tokens},
                ),
                progress=False,
            )
            wall = time.perf_counter() - t0
            tokens = n * new_tokens
            # decode reads every weight once per step (bf16: 2 bytes a parameter)
            bound_tokens_s = bs * H200["hbm_bytes_per_s"] / (2 * n_params)
            row = {
                "batch": bs,
                "merged": merged,
                "items": n,
                "wall_s": wall,
                "tokens_per_s": tokens / wall,
                "items_per_s": n / wall,
                "decode_bound_tokens_per_s": bound_tokens_s,
                "ratio_to_bound": bound_tokens_s / (tokens / wall),
                "summary_keys": sorted(summary)[:8] if isinstance(summary, dict) else None,
            }
            out["runs"].append(row)
    best = max((r for r in out["runs"]), key=lambda r: r["items_per_s"])
    total = 2 * sum(TEST_ITEMS.values())
    out["projected_all_test_sets_min"] = total / best["items_per_s"] / 60
    out["projection_basis"] = f"batch {best['batch']}, merged={best['merged']}"
    return out


def markdown(res: dict) -> str:
    t = res["training"]
    lines = [
        f"# GPU suite ({'dry run on CPU: numbers mean nothing' if res['dry'] else res['device']})",
        "",
    ]
    if res.get("demo_dag"):
        lines += demo_dag.markdown(res["demo_dag"]) + [""]
    lines += [
        "| training (Qwen2.5-7B shapes, QLoRA as study 001) | value |",
        "| --- | ---: |",
        f"| s per optimizer step (2 × 8 × 1,024 tokens) | {t['s_per_optimizer_step']:.2f} |",
        f"| projected 3 epochs on 13,824 items (h) | {t['projected_study_training_h']:.2f} |",
        f"| × the bf16 compute bound | {t['ratio_to_bound']:.1f} |",
        "",
        "| generation | batch | tokens/s | items/s | × the HBM bound |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in res["generation"]["runs"]:
        kind = "merged" if r["merged"] else "unmerged"
        lines.append(
            f"| {kind} | {r['batch']} | {r['tokens_per_s']:.1f} | {r['items_per_s']:.2f} | "
            f"{r['ratio_to_bound']:.1f} |"
        )
    g = res["generation"]
    lines += [
        "",
        f"All test sets (AI Hub 1,728 + KorMedMCQA 3,009) × base + fine-tuned at "
        f"{g['new_tokens']} new tokens each: {g['projected_all_test_sets_min']:.1f} min "
        f"({g['projection_basis']}).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--work", type=Path, default=None, help="scratch (default: OUT/gpu_suite_work)")
    ap.add_argument("--dry", action="store_true", help="tiny shapes on the CPU (CI)")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps (default 4; dry 2)")
    ap.add_argument("--new-tokens", type=int, default=None, help="forced (default 128; dry 4)")
    ap.add_argument(
        "--dag",
        choices=("gpu", "all", "none"),
        default="gpu",
        help="part 1, the demo DAG on CUDA: up to the generations (gpu), the whole DAG (all: "
        "scoring and paper need more packages), or not at all (none)",
    )
    ap.add_argument(
        "--only-dag", action="store_true", help="part 1 alone (the 7B parts in another call)"
    )
    a = ap.parse_args(argv)
    if a.only_dag and a.dag == "none":
        ap.error("--only-dag with --dag none runs nothing")
    missing = prerequisites(a.dry, a.dag)
    if missing:
        print("gpu_suite: missing " + "; ".join(missing), file=sys.stderr)
        return 2
    import torch

    work = a.work or a.out / "gpu_suite_work"
    work.mkdir(parents=True, exist_ok=True)
    a.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    dag = None
    if a.dag != "none":
        dag = demo_dag.run_dag(work / "demo_dag", dry=a.dry, target=a.dag)
        print("\n".join(demo_dag.markdown(dag)), flush=True)
        if a.only_dag:
            (a.out / "gpu_suite_dag.json").write_text(json.dumps(dag, indent=2), encoding="utf-8")
            (a.out / "gpu_suite_dag.md").write_text(
                "\n".join(demo_dag.markdown(dag)) + "\n", encoding="utf-8"
            )
            return 0 if "error" not in dag else 1
    t_build = time.perf_counter()
    mj = build_model(work / "model", TINY if a.dry else QWEN7B, "float32" if a.dry else "bfloat16")
    res = {
        "dry": a.dry,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "shape": TINY if a.dry else QWEN7B,
        "n_params": json.loads(mj.read_text())["n_params"],
        "demo_dag": dag,
        "build_s": time.perf_counter() - t_build,
    }
    res["training"] = bench_training(mj, work / "train", a.dry, a.steps or (2 if a.dry else 4))
    new_tokens = a.new_tokens or (4 if a.dry else 128)
    res["generation"] = bench_generation(mj, res["training"]["adapter"], work, a.dry, new_tokens)
    res["total_s"] = time.perf_counter() - t0
    (a.out / "gpu_suite.json").write_text(json.dumps(res, indent=2), encoding="utf-8")
    (a.out / "gpu_suite.md").write_text(markdown(res), encoding="utf-8")
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
