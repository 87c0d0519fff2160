"""The paper's tables of the training runs: LoRA configuration, hyperparameters and cost, and
the environment (with the base each run was generated on)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kmedqa.paper.tables import Table, fmt, run_order


def lora_table(summaries: dict[str, dict[str, Any]]) -> Table:
    t = Table(
        "lora",
        "LoRA configuration (read from each training run)",
        ["run", "quantization", "r", "alpha", "dropout", "target modules", "bias"],
    )
    for name, s in summaries.items():
        lo = s["lora"]
        quant = (
            "NF4 + double quant (QLoRA)"
            if s["quantization"] == "nf4"
            else "none (LoRA on full-precision weights)"
        )
        t.rows.append(
            [
                name,
                quant,
                lo["r"],
                lo["alpha"],
                lo.get("dropout"),
                ", ".join(lo["target_modules"]),
                lo.get("bias", "none"),
            ]
        )
    return t


# training argument -> its row label, in the table's order
HPARAMS = {
    "num_train_epochs": "epochs",
    "max_steps": "max steps",
    "per_device_train_batch_size": "batch size",
    "gradient_accumulation_steps": "gradient accumulation",
    "learning_rate": "learning rate",
    "lr_scheduler_type": "scheduler",
    "warmup_ratio": "warmup ratio",
    "weight_decay": "weight decay",
    "max_grad_norm": "max grad norm",
    "max_length": "max length",
    "optim": "optimizer",
    "gradient_checkpointing": "gradient checkpointing",
    "bf16": "bf16",
}


def training_table(summaries: dict[str, dict[str, Any]]) -> Table:
    names = list(summaries)
    t = Table(
        "training", "Training hyperparameters and cost (read from each training run)", ["", *names]
    )
    if any(s.get("stage") == "cpt" or s.get("cpt") for s in summaries.values()):
        t.rows.append(["stage", *[_stage(s) for s in summaries.values()]])
    for key, label in HPARAMS.items():
        vals = [s["args"].get(key) for s in summaries.values()]
        if any(v is not None for v in vals):
            t.rows.append([label, *[fmt(v, 6) if isinstance(v, float) else fmt(v) for v in vals]])
    extra = [
        ("training items", lambda s: s["n_train"]),
        ("validation items", lambda s: s["n_val"]),
        ("optimizer steps", lambda s: s["global_steps"]),
        ("trainable parameters", lambda s: s["params"]["trainable"]),
        ("total parameters (as PEFT counts)", lambda s: s["params"]["total_peft"]),
        ("trainable % (as PEFT counts)", lambda s: f"{s['params']['trainable_pct_peft']:.2f}%"),
        ("total parameters (unpacked)", lambda s: s["params"]["total_unpacked"]),
        ("trainable % (unpacked)", lambda s: f"{s['params']['trainable_pct_unpacked']:.2f}%"),
        ("final train loss", lambda s: s.get("train_loss")),
        ("final validation loss", lambda s: s.get("final_val_loss")),
        ("wall time (min)", lambda s: s["wall_time_s"] / 60),
        ("tokens/s", lambda s: s.get("tokens_per_s")),
        ("peak GPU memory (MiB)", lambda s: s["memory"].get("gpu_peak_allocated_mib")),
        ("peak process RSS (MiB)", lambda s: s["memory"].get("cpu_peak_rss_mib")),
        ("device", lambda s: f"{s['device']} ({s.get('device_name') or '?'})"),
    ]
    for label, get in extra:
        t.rows.append(
            [
                label,
                *[
                    fmt(get(s), 2) if isinstance(get(s), float) else fmt(get(s))
                    for s in summaries.values()
                ],
            ]
        )
    return t


def _stage(summary: dict[str, Any]) -> str:
    """Continued pre-training, or fine-tuning (on base + a merged CPT adapter, or on base)."""
    if summary.get("stage") == "cpt":
        return f"CPT on {summary['corpus']} (causal LM, packed; documents as items)"
    if summary.get("cpt"):
        return f"SFT on base + CPT ({summary['cpt']['corpus']}) merged"
    return "SFT on base"


def describe_inference_base(base: dict[str, Any]) -> str:
    """One line for a generation summary's ``inference_base``."""
    if base.get("hosted"):
        return f"hosted: {base['hosted']}"
    if base.get("quantization") == "nf4":
        text = "NF4 4-bit (bitsandbytes, double quantization)"
    else:
        text = f"unquantized ({base.get('dtype') or 'auto'})"
    if base.get("adapter"):
        text += " + LoRA adapter" + (" (merged)" if base.get("merge_adapter") else "")
    return text


def environment_table(
    env: dict[str, Any], generations: Sequence[dict[str, Any]] | None = None
) -> Table:
    """The machine's environment and, per run, the base model it was generated on
    (``generations``: generation summaries with ``run`` and ``inference_base``)."""
    t = Table(
        "environment",
        "Environment of the run (read from the machine that ran it)",
        ["component", "value"],
    )
    for k, v in env.items():
        t.rows.append([k, fmt(v)])
    bases: dict[str, set[str]] = {}
    for g in generations or []:
        bases.setdefault(g["run"], set()).add(describe_inference_base(g["inference_base"]))
    for run in sorted(bases, key=run_order):
        t.rows.append([f"inference base, {run}", "; ".join(sorted(bases[run]))])
    return t
