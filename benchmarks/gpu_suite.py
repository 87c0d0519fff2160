"""What a 7B study costs on one GPU: QLoRA steps and generation at Qwen2.5-7B-Instruct's shapes.

    PYTHONPATH=src python benchmarks/gpu_suite.py --out $OUT --work /tmp/suite   # one H200, ~8 min
    PYTHONPATH=src python benchmarks/gpu_suite.py --dry --out /tmp/suite         # CPU, tiny, seconds

Hub weights cannot be fetched (here or on a lent GPU machine), but a model built from the
published ``config.json`` with random weights has the real shapes and so the real cost per
token. In this order, each part written to ``OUT/gpu_suite.json`` / ``.md`` as it ends (a
call cut short still returns what finished), and each later part skipped, saying so, when
``--budget-s`` would not leave it time:

1. prerequisites (CUDA, every package imported for real, free GPU memory): one line naming
   all that is missing (exit 2), so that a device call without them ends in seconds;
2. the card's ceilings, measured (:mod:`gpu_cost`: HBM copy bandwidth, bf16 matrix rate);
3. Qwen2.5-7B-Instruct's architecture (hidden 3584, 28 layers, 28 query / 4 KV heads,
   intermediate 18944, vocab 152,064) with random bf16 weights, saved;
4. QLoRA training with :func:`kmedqa.training.train` as ``experiments/essential_medical.yaml``
   does (NF4 + double quant + bf16 compute, LoRA r16 α32 on the seven projections, batch 2 ×
   accumulation 8, every example filled to 1,024 tokens, paged AdamW 8-bit, gradient
   checkpointing) for a few optimizer steps → the first step, the median later step, peak
   memory, and the study's 3 epochs on 13,824 items projected from the median;
5. generation with kmedqa's engine (:func:`kmedqa.generation.generate`) at batch 1 / 32 /
   128, every row forced to the same number of new tokens (random weights stop at random, so
   stop ids are switched off), on three bases: bf16 + the unmerged adapter, the merged adapter
   (the cost of the base run too), and NF4 + the unmerged adapter (how study 001 generates its
   fine-tuned run: ``adapter_base: training``); each model loaded once and timed apart, a
   warm-up batch untimed. On the merged model the decode step is also timed outside the
   engine, eager and replayed from a CUDA graph (:func:`gpu_cost.step_probe`);
6. the study's full test sets (AI Hub 1,728 + KorMedMCQA 3,009) × base + fine-tuned,
   projected at the study's batch size (32);
7. the demo's DAG on CUDA with QLoRA as study 001 runs it (``experiments/demo_gpu.yaml``,
   Gemma 3 270M's architecture with random weights built on the device, since the GGUF
   cannot be carried) through Snakemake, each job's time from its benchmark file
   (:mod:`demo_dag`; ``--dag none`` skips it).

Each figure stands beside its physical bound (:mod:`gpu_cost`). ``--dry`` runs the same code
on the CPU with tiny shapes, no quantization and two steps, so that the suite cannot rot (CI
runs it in tests/test_gpu_suite.py): the DAG is resolved with ``snakemake -n`` on the GPU
config and its ``materialize`` job runs for real with a tiny architecture. Its numbers mean
nothing.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import demo_dag  # noqa: E402
import gpu_cost  # noqa: E402
from decode_step_cost import batch_sizes  # noqa: E402
from gpu_report import STUDY_GEN_BATCH, markdown, save, study_projection  # noqa: E402

from kmedqa.generation.lookup import PROMPT_LOOKUP  # noqa: E402

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LORA = {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": TARGETS}  # study 001's
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
PROMPT_TOKENS = 200  # the prompt's length in tokens, chat template included (dry: 40)
# (name, base quantization, merge the adapter, CUDA graphs, prompt-lookup guesses): the
# engine's three ways to run an adapter, one token per step; then the merged model again
# through kmedqa.generation.graphs, and with the default prompt-lookup guesses (random
# weights keep few of them: that row is the cost of feeding them; same run, same card)
VARIANTS = (
    ("unmerged", "none", False, False, 0),
    ("merged", "none", True, False, 0),
    ("nf4-unmerged", "nf4", False, False, 0),
    ("merged-graph", "none", True, True, 0),
    ("merged-lookup", "none", True, False, PROMPT_LOOKUP),
)
PACKAGES = ["torch", "transformers", "peft", "trl", "accelerate", "datasets"]


def prerequisites(dry: bool, dag: str = "gpu") -> list[str]:
    """Everything that is missing, in one line each (empty: ready). Each package is imported
    (a wheel of the wrong build is found but fails to import), before anything runs."""
    missing = []
    for m in PACKAGES + ([] if dry else ["bitsandbytes"]):
        try:
            importlib.import_module(m)
        except Exception as e:  # noqa: BLE001 - ImportError, or a broken build's own error
            why = "" if isinstance(e, ModuleNotFoundError) else f" (import fails: {e})"[:200]
            missing.append(f"python package {m!r}{why}")
    if dag != "none":
        missing += [m for m in demo_dag.missing_modules(dag, dry) if m not in missing]
    if missing:
        missing[-1] += " (carry wheels: benchmarks/README.md, 'GPU suite')"
    if dry or any("'torch'" in m for m in missing):
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
    default = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))  # built in its dtype: no fp32 copy first
    try:
        with torch.device(device):
            model = Qwen2ForCausalLM(cfg)
    finally:
        torch.set_default_dtype(default)
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


def prompt_tokens(tok, words: int) -> int:
    """The token length of an :func:`items` prompt of ``words`` words, chat template included."""
    import kmedqa.generation as gen

    return len(tok(gen.render_prompts(items(1, words), tok, {})[0]["text"])["input_ids"])


def prompt_words(mj: Path, target_tokens: int) -> int:
    """How many words :func:`items` needs for a prompt of ``target_tokens`` tokens: the
    offline tokenizer spells most words in pieces (about 5 tokens a word here)."""
    from kmedqa.models import load_tokenizer, read_model_info

    tok = load_tokenizer(read_model_info(str(mj)))
    words = 2
    while prompt_tokens(tok, words + 2) <= target_tokens:
        words += 2
    return words


def bench_training(mj: Path, work: Path, dry: bool, steps: int, ceil: dict, words: int) -> dict:
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
        "lora": LORA,
        "args": args,
    }
    n = steps * args["per_device_train_batch_size"] * args["gradient_accumulation_steps"]
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    summary = train(
        model_json=str(mj),
        train_items=items(n, words),  # the long answer fills max_length
        val_items=items(2, 16),
        formats={},
        training=training,
        seed=42,
        **train_outputs(work, "train_summary.json", "checkpoints"),
    )
    wall = time.perf_counter() - t0
    st = summary.get("step_time_s") or {}
    per_step = st.get("median_after_first_s") or summary["wall_time_s"] / summary["global_steps"]
    study_steps = STUDY["epochs"] * STUDY["train_items"] / (STUDY["batch"] * STUDY["accum"])
    tokens_per_step = STUDY["batch"] * STUDY["accum"] * STUDY["max_length"]
    shape = TINY if dry else QWEN7B
    n_params = json.loads(mj.read_text())["n_params"]
    matmul = n_params - shape["vocab_size"] * shape["hidden_size"]  # the input table: a lookup
    bound = gpu_cost.training_bound_s(matmul, tokens_per_step, ceil)
    return {
        "steps": summary["global_steps"],
        "wall_s": wall,  # load + quantize + train + save
        "train_s": summary["wall_time_s"],
        "first_step_s": st.get("first_s"),
        "s_per_optimizer_step": per_step,
        "tokens_per_step": tokens_per_step,
        "peak_memory": summary.get("memory"),
        "params": summary.get("params"),
        "study_optimizer_steps": study_steps,
        "projected_study_training_h": per_step * study_steps / 3600,
        "bound_s_per_step": bound,
        "ratio_to_bound": per_step / bound,
        "adapter": str(work / "adapter"),
    }


def untrained_adapter(mj: Path, out: Path) -> str:
    """A LoRA adapter as training would save it (r16, alpha 32, the seven projections),
    freshly initialized: for timing generation without the training part."""
    from peft import LoraConfig, get_peft_model

    from kmedqa.models import load_model, read_model_info

    model = load_model(read_model_info(str(mj)), device="auto")
    lora = LoraConfig(
        r=LORA["r"], lora_alpha=LORA["alpha"], target_modules=TARGETS, task_type="CAUSAL_LM"
    )
    get_peft_model(model, lora).save_pretrained(out)
    return str(out)


def load_variant(mj: Path, adapter: str, quantization: str, merged: bool, device: str):
    """The model the engine would load for this run (kmedqa's own loading and PEFT calls)."""
    from peft import PeftModel

    from kmedqa.models import load_model, load_tokenizer, read_model_info

    info = read_model_info(str(mj))
    model = PeftModel.from_pretrained(
        load_model(info, quantization=quantization, device=device), adapter
    )
    if merged:
        model = model.merge_and_unload()
    return model.eval(), load_tokenizer(info)


def bench_generation(
    mj, adapter, work, dry, new_tokens, ceil, deadline, words, saved, variants, batches
) -> dict:
    """``saved(partial)`` is called after each variant (a call cut short keeps them). The
    step probe runs last, on the merged model kept aside: a CUDA error there (which ends the
    process's CUDA context) costs no variant."""
    import torch

    import kmedqa.generation as gen
    import kmedqa.generation.runners as runners

    runners.stop_token_ids = lambda tok, model, **kw: []  # forced: every row decodes its budget
    n_params = json.loads(mj.read_text())["n_params"]
    device = "cpu" if dry else "cuda"
    cuda = device == "cuda"
    out: dict = {"new_tokens": new_tokens, "runs": [], "loads": {}, "skipped": []}

    def run(model, tok, name, bs, n, budget, merged, graph, lookup):
        t0 = time.perf_counter()
        stats = gen.generate(
            model_json=str(mj),
            items=items(n, words),
            formats={},
            run="bench",
            eval_set=f"b{bs}-{name}",
            out_path=str(work / f"gen-{bs}-{name}.jsonl"),
            cache_dir=str(work / f"cache-{bs}-{name}"),
            adapter_dir=adapter,
            settings=gen.GenerationSettings(
                merge_adapter=merged,
                cuda_graph=graph,
                prompt_lookup=lookup,
                batch_size=bs,
                device=device,
                max_new_tokens={"descriptive": budget},
            ),  # fmt: skip
            progress=False,
            model=model,
            tokenizer=tok,
        )
        return stats, time.perf_counter() - t0

    kept = None  # (merged model, its shape, prompt length) for the step probe
    for name, quant, merged, graph, lookup in VARIANTS:
        if name not in variants:
            continue
        if quant == "nf4" and not cuda:
            out["skipped"].append(f"{name}: NF4 needs CUDA")
            continue
        if time.perf_counter() > deadline - 75:
            out["skipped"].append(f"{name}: out of time (--budget-s)")
            continue
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        model, tok = load_variant(mj, adapter, quant, merged, device)
        out["loads"][name] = time.perf_counter() - t0
        shape = gpu_cost.model_shape(model, n_params)
        run(model, tok, f"{name}-warmup", 2, 2, 4, merged, graph, lookup)  # kernels: untimed
        prompt_len = prompt_tokens(tok, words)
        for bs in batches:
            n = bs  # one full batch (the warm-up ran before)
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            stats, wall = run(model, tok, name, bs, n, new_tokens, merged, graph, lookup)
            b = gpu_cost.generation_bound_s(shape, bs, prompt_len, new_tokens, ceil)
            measured = stats["wall_time_s"]
            out["runs"].append(
                {
                    "variant": name,
                    "batch": bs,
                    "merged": merged,
                    "quantization": quant,
                    "cuda_graph": graph,
                    "cuda_graph_batches": stats.get("cuda_graph_batches"),
                    "prompt_lookup": lookup,
                    "draft_tokens_fed": stats.get("draft_tokens_fed"),
                    "draft_tokens_kept": stats.get("draft_tokens_kept"),
                    "items": n,
                    "prompt_tokens": prompt_len,
                    "generate_s": measured,
                    "wall_s": wall,
                    "new_tokens": stats["new_tokens"],
                    "decode_steps": stats.get("decode_steps"),
                    "tokens_per_s": stats["new_tokens"] / measured,
                    "items_per_s": n / measured,
                    "bound_s": b["batch_s"],
                    "bound_tokens_per_s": stats["new_tokens"] / b["batch_s"],
                    "ratio_to_bound": measured / b["batch_s"],
                    "weight_bytes_per_step": shape.weight_bytes,
                    "gpu_peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
                }
            )
        if merged and not graph:
            kept = (model, shape, prompt_len)
        del model
        if cuda:
            torch.cuda.empty_cache()
        out["study"] = study_projection(out["runs"])
        saved(out)
    if kept:  # the model's own step, outside the engine (and from a CUDA graph)
        model, shape, prompt_len = kept
        probe = gpu_cost.step_probe(model, batches, prompt_len=prompt_len)
        for row in probe:
            row["bound_step_s"] = gpu_cost.generation_bound_s(
                shape, row["batch"], prompt_len, 1, ceil
            )["decode_step_s"]
        out["step_probe"] = probe
        saved(out)
    return out


def variant_names(value: str) -> list[str]:
    """``--variants``: comma-separated names of :data:`VARIANTS` (argparse type)."""
    names, known = value.split(","), [v[0] for v in VARIANTS]
    if bad := [n for n in names if n not in known]:
        raise argparse.ArgumentTypeError(f"unknown {bad}: want some of {','.join(known)}")
    return names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--work", type=Path, default=None, help="scratch (default: OUT/gpu_suite_work)")
    ap.add_argument("--dry", action="store_true", help="tiny shapes on the CPU (CI)")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps (default 5; dry 2)")
    ap.add_argument("--new-tokens", type=int, default=None, help="forced (default 128; dry 4)")
    ap.add_argument("--budget-s", type=float, default=510, help="stop starting parts after this")
    ap.add_argument(
        "--dag",
        choices=("gpu", "all", "none"),
        default="gpu",
        help="the demo DAG on CUDA, last: up to the generations (gpu), the whole DAG (all: "
        "scoring and paper need more packages), or not at all (none)",
    )
    ap.add_argument(
        "--variants",
        type=variant_names,
        default=[v[0] for v in VARIANTS],
        help=f"generation variants, comma-separated (default {','.join(v[0] for v in VARIANTS)})",
    )
    ap.add_argument("--batches", type=batch_sizes, default=None, help="default 1,32,128")
    ap.add_argument(
        "--untrained-adapter",
        action="store_true",
        help="skip the training part: generate with a freshly initialized LoRA adapter of the "
        "same shape (the same cost per token; LoRA's B starts at zero)",
    )
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    deadline = t0 + a.budget_s
    missing = prerequisites(a.dry, a.dag)
    if missing:
        print("gpu_suite: missing " + "; ".join(missing), file=sys.stderr)
        return 2
    import torch

    from kmedqa.training.report import versions

    work = a.work or a.out / "gpu_suite_work"
    work.mkdir(parents=True, exist_ok=True)
    a.out.mkdir(parents=True, exist_ok=True)
    res: dict = {
        "dry": a.dry,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "versions": versions(),
        "shape": TINY if a.dry else QWEN7B,
    }
    res["ceilings"] = ceil = gpu_cost.measure_ceilings(a.dry)
    t_build = time.perf_counter()
    mj = build_model(work / "model", TINY if a.dry else QWEN7B, "float32" if a.dry else "bfloat16")
    res.update(
        n_params=json.loads(mj.read_text())["n_params"], build_s=time.perf_counter() - t_build
    )
    words = res["prompt_words"] = prompt_words(mj, 40 if a.dry else PROMPT_TOKENS)
    steps = a.steps or (2 if a.dry else 5)
    if a.untrained_adapter:
        adapter = untrained_adapter(mj, work / "adapter")
        res["training"] = {"skipped": "--untrained-adapter", "adapter": adapter}
    else:
        res["training"] = bench_training(mj, work / "train", a.dry, steps, ceil, words)
        adapter = res["training"]["adapter"]
    res["total_s"] = time.perf_counter() - t0
    save(res, a.out)
    print(markdown(res), flush=True)
    new_tokens = a.new_tokens or (4 if a.dry else 128)
    batches = a.batches or ((1, 2, 4) if a.dry else (1, STUDY_GEN_BATCH, 128))
    res["generation"] = bench_generation(
        mj, adapter, work, a.dry, new_tokens, ceil, deadline, words,
        saved=lambda partial: save({**res, "generation": partial}, a.out),
        variants=a.variants, batches=batches,
    )  # fmt: skip
    res["total_s"] = time.perf_counter() - t0
    save(res, a.out)
    print(markdown(res), flush=True)
    left = deadline - time.perf_counter()
    if a.dag != "none" and left > 90:
        res["demo_dag"] = demo_dag.run_dag(
            work / "demo_dag", dry=a.dry, target=a.dag, timeout_s=int(left)
        )
    elif a.dag != "none":
        res["demo_dag_skipped"] = f"out of time: {left:.0f} s of --budget-s left"
    res["total_s"] = time.perf_counter() - t0
    save(res, a.out)
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
