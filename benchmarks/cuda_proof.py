"""Proof on a CUDA GPU that the QLoRA path is what the config says, and how fast generation is.

Run from the repository root on a machine with an NVIDIA GPU, bitsandbytes, trl, peft and
datasets installed::

    PYTHONPATH=src python benchmarks/cuda_proof.py --out results/cuda_proof

It builds a randomly initialized model with the *real* Gemma 3 270M layer shapes (hidden
640, intermediate 2048, 18 layers, 4 query heads / 1 KV head of 256, sliding + full
attention) but the tiny offline tokenizer of ``kmedqa.testing`` (a few hundred tokens, so
no hub access is needed), then

1. trains it with :func:`kmedqa.training.train` exactly as ``experiments/essential_medical.yaml``
   does (NF4 + double quantization + bf16 compute, LoRA r16 α32 dropout .05 on
   q,k,v,o,gate,up,down, paged AdamW 8-bit, gradient checkpointing, bf16, cosine), for a
   few steps, and checks from the live objects that
   * every targeted Linear is a bitsandbytes ``Linear4bit`` holding NF4 weights with a
     nested (double-quantized) quant state and bf16 compute dtype,
   * the optimizer is bitsandbytes' paged 8-bit AdamW with uint8 moment states,
   * the saved adapter, reloaded with ``PeftModel.from_pretrained`` on a freshly loaded
     4-bit base, gives the same greedy outputs as the in-memory model;
2. reports trainable parameters (PEFT's packed count and unpacked), peak GPU memory and
   training tokens/s;
3. times :func:`kmedqa.generation.generate` (batched) against the naive one-item loop
   (:func:`kmedqa.bench.bench_generate`) on the same model in bf16.

Every result is written as JSON under ``--out`` and printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

FORMATS = {"aihub71875": "aihub", "kormedmcqa": "kormedmcqa"}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


GEMMA3_270M_SHAPE = {
    "hidden_size": 640,
    "intermediate_size": 2048,
    "num_hidden_layers": 18,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "head_dim": 256,
    "query_pre_attn_scalar": 256,
    "sliding_window": 512,
    "layer_types": [
        "full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(18)
    ],
    "max_position_embeddings": 32768,
}


def build_model(outdir: Path, dtype: str) -> Path:
    """Tiny tokenizer + random weights in Gemma 3 270M's shapes; writes ``model.json``."""
    from kmedqa.testing import build_tiny_model, write_model_json

    hf = build_tiny_model(outdir / "hf", **GEMMA3_270M_SHAPE)
    return write_model_json(
        hf, outdir / f"model-{dtype}.json", name="gemma3-270m-shape", dtype=dtype
    )


def quant_report(model) -> dict:
    """What the live model holds: bitsandbytes 4-bit layers, their quant type and nesting."""
    import bitsandbytes as bnb
    import torch

    layers = {}
    other_linear = []
    for name, mod in model.named_modules():
        if isinstance(mod, bnb.nn.Linear4bit):
            qs = mod.weight.quant_state
            layers[name] = {
                "quant_type": qs.quant_type,
                "nested": bool(qs.nested),
                "compute_dtype": str(mod.compute_dtype).replace("torch.", ""),
                "blocksize": qs.blocksize,
                "weight_dtype": str(mod.weight.dtype).replace("torch.", ""),
                "shape": list(qs.shape),
            }
        elif type(mod) is torch.nn.Linear and "lora_" not in name:
            other_linear.append(name)
    targeted = [
        n for n in layers if n.rsplit(".", 1)[-1] in TARGETS or n.rsplit(".", 2)[-2] in TARGETS
    ]
    return {
        "n_linear4bit": len(layers),
        "quant_types": sorted({v["quant_type"] for v in layers.values()}),
        "all_nested_double_quant": all(v["nested"] for v in layers.values()),
        "compute_dtypes": sorted({v["compute_dtype"] for v in layers.values()}),
        "storage_dtypes": sorted({v["weight_dtype"] for v in layers.values()}),
        "n_targeted_linear4bit": len(targeted),
        "unquantized_linear": other_linear,
        "example": next(iter(layers.items())) if layers else None,
    }


def optimizer_report(trainer) -> dict:
    import bitsandbytes as bnb

    opt = trainer.optimizer
    inner = getattr(opt, "optimizer", opt)  # accelerate wraps it
    state_dtypes: dict[str, int] = {}  # moment tensors by dtype (bnb keeps tiny ones in fp32)
    for st in inner.state.values():
        for key in ("state1", "state2"):
            if key in st:
                d = str(st[key].dtype).replace("torch.", "")
                state_dtypes[d] = state_dtypes.get(d, 0) + 1
    groups = inner.param_groups
    return {
        "class": f"{type(inner).__module__}.{type(inner).__qualname__}",
        # transformers builds optim=paged_adamw_8bit as bnb AdamW(optim_bits=8, is_paged=True)
        "is_bnb_paged_8bit_adamw": isinstance(inner, bnb.optim.optimizer.Optimizer2State)
        and type(inner).__name__ in ("AdamW", "PagedAdamW8bit", "PagedAdamW")
        and bool(getattr(inner, "is_paged", False))
        and getattr(getattr(inner, "args", None), "optim_bits", None) == 8,
        "is_paged": bool(getattr(inner, "is_paged", False)),
        "optim_bits": getattr(getattr(inner, "args", None), "optim_bits", None),
        "min_8bit_size": getattr(getattr(inner, "args", None), "min_8bit_size", None),
        "moment_tensors_by_dtype": state_dtypes,
        "n_param_groups": len(groups),
        "lr_now": groups[0]["lr"],
        "scheduler": type(trainer.lr_scheduler).__name__
        if trainer.lr_scheduler is not None
        else None,
    }


def greedy(model, tok, texts: list[str], n: int = 16) -> tuple[list[list[int]], list[list[float]]]:
    """Greedy continuations one prompt at a time, plus each prompt's last-position logits."""
    import torch

    outs, logits = [], []
    dev = next(model.parameters()).device
    for t in texts:
        enc = tok(t, add_special_tokens=False, return_tensors="pt").to(dev)
        with torch.inference_mode():
            g = model.generate(
                **enc, do_sample=False, max_new_tokens=n, pad_token_id=tok.pad_token_id
            )
            lg = model(**enc).logits[0, -1].float()
        outs.append(g[0, enc["input_ids"].shape[1] :].tolist())
        logits.append(lg.cpu().tolist())
    return outs, logits


def run_training(work: Path, model_json: Path, steps: int) -> dict:
    import torch
    import trl
    from peft import PeftModel, prepare_model_for_kbit_training

    from kmedqa.generation import render_prompts
    from kmedqa.generation.bench import demo_items
    from kmedqa.models import load_model, load_tokenizer, read_model_info
    from kmedqa.testing import train_outputs
    from kmedqa.training import count_parameters, train

    items = demo_items(96, mix="aihub")
    train_items, val_items, probe_items = items[:80], items[80:88], items[88:]
    training = {
        "quantization": "nf4",
        "device": "auto",
        "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": TARGETS, "bias": "none"},
        "args": {
            "max_steps": steps,
            "per_device_train_batch_size": 2,
            "per_device_eval_batch_size": 8,
            "gradient_accumulation_steps": 2,
            "learning_rate": 2.0e-4,
            "lr_scheduler_type": "cosine",
            "warmup_ratio": 0.05,
            "weight_decay": 0.01,
            "max_grad_norm": 1.0,
            "max_length": 1024,
            "optim": "paged_adamw_8bit",
            "gradient_checkpointing": True,
            "bf16": True,
            "logging_steps": 1,
            "eval_strategy": "steps",
            "eval_steps": 10,
            "include_num_input_tokens_seen": "non_padding",
        },
    }
    captured = {}
    real_train = trl.SFTTrainer.train

    def capture(self, *a, **kw):  # keep the live trainer to inspect its model and optimizer
        captured["trainer"] = self
        captured["params_before"] = count_parameters(self.model)
        captured["quant"] = quant_report(self.model)
        return real_train(self, *a, **kw)

    trl.SFTTrainer.train = capture
    torch.cuda.reset_peak_memory_stats()
    try:
        summary = train(
            model_json=str(model_json),
            train_items=train_items,
            val_items=val_items,
            formats=FORMATS,
            training=training,
            seed=42,
            **train_outputs(work, "train_summary.json"),
        )
    finally:
        trl.SFTTrainer.train = real_train
    trainer = captured["trainer"]
    peak_alloc = torch.cuda.max_memory_allocated() / 2**20

    # the adapter on disk, reloaded on a freshly loaded 4-bit base
    info = read_model_info(model_json)
    tok = load_tokenizer(info)
    texts = [p["text"] for p in render_prompts(probe_items, tok, FORMATS)]
    from accelerate.utils import extract_model_from_parallel
    from safetensors.torch import load_file

    # the trainer's model runs under accelerate's bf16 autocast wrapper; take the plain
    # module, as a reloaded model is, so that both compute LoRA in the same precision
    live = extract_model_from_parallel(trainer.model, keep_fp32_wrapper=False)
    live.eval()
    live_out, live_logits = greedy(live, tok, texts)
    adapter_files = sorted(p.name for p in (work / "adapter").iterdir())
    saved = load_file(str(work / "adapter" / "adapter_model.safetensors"))
    live_lora = {
        n.replace(".default", ""): p.detach().float().cpu()
        for n, p in live.named_parameters()
        if "lora_" in n
    }
    weights_check = {
        "n_saved": len(saved),
        "n_live": len(live_lora),
        "same_names": sorted(saved) == sorted(live_lora),
        "bitwise_equal": sum(
            torch.equal(saved[k].float().cpu(), live_lora[k]) for k in saved if k in live_lora
        ),
        "saved_dtypes": sorted({str(t.dtype).replace("torch.", "") for t in saved.values()}),
        "lora_B_nonzero": sum(bool(t.abs().sum() > 0) for k, t in saved.items() if "lora_B" in k),
    }

    def reload(prepare: bool, upcast: bool):
        base = load_model(info, quantization="nf4", device="cuda")
        if prepare:  # what train() did to the base before wrapping it (fp32 norms, embeddings)
            base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
        # upcast=False keeps the adapter in the dtype it was trained and saved in (TRL trains
        # it in bf16 under bf16: true); PEFT's default upcasts it to fp32 on load
        m = PeftModel.from_pretrained(base, str(work / "adapter"), autocast_adapter_dtype=upcast)
        m.eval()
        return m

    def lora_dtypes(m) -> list[str]:
        return sorted(
            {str(p.dtype).replace("torch.", "") for n, p in m.named_parameters() if "lora_" in n}
        )

    weights_check["live_lora_dtypes"] = lora_dtypes(live)
    reloaded = {}
    variants = {
        "as_trained": (True, False),  # same base preparation, adapter dtype as trained
        "prepared_fp32_adapter": (True, True),
        "plain_4bit_load_fp32_adapter": (False, True),  # how a later generate run loads it
    }
    for name, (prepare, upcast) in variants.items():
        m = reload(prepare, upcast)
        out, lg = greedy(m, tok, texts)
        diff = max(
            abs(a - b)
            for la, lb in zip(lg, live_logits, strict=True)
            for a, b in zip(la, lb, strict=True)
        )
        reloaded[name] = {
            "lora_dtypes": lora_dtypes(m),
            "same_greedy_tokens": sum(a == b for a, b in zip(out, live_out, strict=True)),
            "n_prompts": len(texts),
            "max_abs_logit_diff": diff,
            "quant": quant_report(m)["quant_types"],
        }
        del m
        torch.cuda.empty_cache()
    base_only = load_model(info, quantization="nf4", device="cuda")
    base_out, _ = greedy(base_only, tok, texts)
    del base_only
    return {
        "summary": summary,
        "quantization_check": captured["quant"],
        "optimizer_check": optimizer_report(trainer),
        "params_counted_before_train": captured["params_before"],
        "adapter_files": adapter_files,
        "adapter_weights_check": weights_check,
        "reload_check": reloaded,
        "adapter_changes_outputs": sum(a != b for a, b in zip(base_out, live_out, strict=True)),
        "gpu_peak_allocated_mib_train_and_checks": peak_alloc,
        "loss_csv_head": (work / "loss.csv").read_text().splitlines()[:4],
    }


def run_bench(model_json: Path, n: int, configs: list[tuple[int, bool]]) -> list[dict]:
    from kmedqa.generation.bench import bench_generate, demo_items
    from kmedqa.models import load_model, load_tokenizer, read_model_info

    info = read_model_info(model_json)
    model = load_model(info, device="cuda")
    tok = load_tokenizer(info)
    out = []
    items = demo_items(n)
    for bs, share in configs:
        r = bench_generate(
            model_json=str(model_json), items=items, formats=FORMATS, batch_size=bs,
            device="cuda", model=model, tokenizer=tok, share_prefix=share,
        )  # fmt: skip
        out.append(r)
        print(
            f"bench bs={bs} share_prefix={share}: engine {r['engine']['wall_s']:.2f}s ({r['engine']['items_per_s']:.1f} items/s, "
            f"{r['engine']['new_tokens_per_s']:.0f} tok/s) naive {r['naive']['wall_s']:.2f}s "
            f"({r['naive']['items_per_s']:.1f} items/s) ratio {r['ratio']:.1f}x "
            f"same text {r['agreement']['same_text']}/{r['n_items']}",
            flush=True,
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", default="/tmp/kmedqa-cuda-proof")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument(
        "--bench-configs",
        default="16,64,64:noshare",
        help="engine batch sizes to time, comma-separated; ':noshare' turns prefix sharing off",
    )
    ap.add_argument("--skip-train", action="store_true")
    args = ap.parse_args()

    import torch

    from kmedqa.envinfo import environment

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {"environment": environment(), "errors": {}}
    if not torch.cuda.is_available():
        print("cuda_proof: CUDA is not available", file=sys.stderr)
        return 2
    props = torch.cuda.get_device_properties(0)
    report["gpu"] = {
        "name": props.name,
        "total_mib": props.total_memory / 2**20,
        "capability": f"{props.major}.{props.minor}",
    }
    t0 = time.time()
    mj_bf16 = build_model(work / "model", "bfloat16")
    report["model"] = {
        "shape": "gemma3-270m layer shapes, random init, tiny tokenizer",
        "build_s": time.time() - t0,
    }
    if not args.skip_train:
        t0 = time.time()
        try:
            report["training"] = run_training(work, mj_bf16, args.steps)
        except Exception:
            report["errors"]["training"] = traceback.format_exc()
            print(report["errors"]["training"], file=sys.stderr)
        report["training_s"] = time.time() - t0
        (out / "training.json").write_text(
            json.dumps(report.get("training"), indent=2, default=str)
        )
    torch.cuda.reset_peak_memory_stats()
    try:
        configs = [
            (int(x.split(":")[0]), not x.endswith(":noshare"))
            for x in args.bench_configs.split(",")
            if x
        ]
        report["bench"] = run_bench(mj_bf16, args.n, configs)
        report["bench_gpu_peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    except Exception:
        report["errors"]["bench"] = traceback.format_exc()
        print(report["errors"]["bench"], file=sys.stderr)
    text = json.dumps(report, indent=2, default=str)
    (out / "cuda_proof.json").write_text(text)
    print(text)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
