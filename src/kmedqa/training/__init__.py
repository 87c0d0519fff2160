"""Supervised fine-tuning with LoRA / QLoRA through TRL's ``SFTTrainer``.

Items become conversational prompt/completion pairs (:func:`kmedqa.prompts.build_messages`),
so the loss covers the answer tokens only. ``quantization: nf4`` gives QLoRA (NF4,
double quantization, bf16 compute, usually with ``optim: paged_adamw_8bit``) and needs
CUDA; ``quantization: none`` trains LoRA on unquantized weights (the CPU demo), because
the config says so, never as a fallback.

Checkpoints go to ``checkpoint_dir`` (outside Snakemake's outputs): a killed job rerun
with the same config resumes from its last checkpoint (:mod:`.checkpoints`). The loss log
is :mod:`.losslog`'s, the summary's parameter, memory and version counts :mod:`.report`'s.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict, Unpack

from kmedqa.errors import ConfigError
from kmedqa.io import write_json
from kmedqa.prompts import build_messages, format_name, get_format, target_text
from kmedqa.prompts.chat import fit_messages
from kmedqa.training.balance import (
    WEIGHT_COLUMN,
    WeightCollator,
    apply_balance,
    weighted_trainer_class,
)
from kmedqa.training.checkpoints import checkpoint_progress, last_checkpoint
from kmedqa.training.losslog import (
    history_rows,
    loss_logger,
    step_timer,
    step_times,
    write_loss_csv,
)
from kmedqa.training.report import count_parameters, device_name, peak_memory, versions

log = logging.getLogger(__name__)


class StageOutputs(TypedDict):
    """What every training stage writes (SFT here, CPT in :mod:`kmedqa.training.cpt`)."""

    adapter_dir: str
    loss_csv: str
    summary_json: str
    checkpoint_dir: str  # outside Snakemake's outputs: a rerun resumes from it


def to_prompt_completion(
    items: list[dict[str, Any]],
    formats: dict[str, str],
    tok=None,
    template_kwargs: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Conversational prompt/completion records (TRL masks the loss to the completion).

    ``formats`` maps dataset name to prompt format; with ``tok``, a system prompt is
    merged into the user turn for templates without a system role.
    """
    records = []
    for item in items:
        fmt = get_format(format_name(item, formats))
        prompt = build_messages(item, fmt)
        if tok is not None:
            prompt = fit_messages(prompt, tok, template_kwargs)
        rec = {
            "id": item["id"],
            "prompt": prompt,
            "completion": [{"role": "assistant", "content": target_text(item, fmt)}],
        }
        if template_kwargs:
            rec["chat_template_kwargs"] = template_kwargs
        records.append(rec)
    return records


def sft_config(
    args: dict[str, Any],
    *,
    output_dir: str,
    device: str,
    seed: int,
    overrides: dict[str, Any] | None = None,
):
    """Build ``SFTConfig`` from ``training.args``; an unknown knob names itself.

    ``overrides`` (a stage's fixed settings, e.g. CPT's packing) win over the defaults."""
    from trl import SFTConfig

    kwargs = dict(args)
    if "warmup_ratio" in kwargs:  # transformers 5: a float warmup_steps in [0, 1) is a ratio
        kwargs["warmup_steps"] = float(kwargs.pop("warmup_ratio"))
    known = {f.name for f in dataclasses.fields(SFTConfig)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ConfigError(f"training.args: unknown SFTConfig option(s): {', '.join(unknown)}")
    if device == "cpu":
        if kwargs.get("bf16") or kwargs.get("fp16"):
            raise ConfigError(
                "training.args: bf16/fp16 mixed precision needs a GPU; set bf16: false for CPU"
            )
        kwargs.update(use_cpu=True, bf16=False, fp16=False)
    kwargs.setdefault("report_to", "none")
    kwargs.setdefault("save_strategy", "steps")
    kwargs.setdefault("save_total_limit", 2)
    kwargs.setdefault("logging_steps", 1)
    kwargs.setdefault("completion_only_loss", True)
    kwargs.setdefault("dataloader_num_workers", 0)
    kwargs.setdefault("include_num_input_tokens_seen", "non_padding")  # for tokens/s in the summary
    kwargs.update(overrides or {})
    return SFTConfig(output_dir=output_dir, seed=seed, data_seed=seed, **kwargs)


def score_only_label_positions_on_cpu() -> bool:
    """Make TRL's fused LM head project only the positions that carry a label, on CPU too.

    TRL 1.x scores only labelled positions on Triton devices and every position elsewhere
    (to keep tile shapes fixed for compilers such as Neuron's). On a CPU nothing is
    compiled, and with answer-only labels and Gemma's 262,144-word output layer, scoring
    every position is most of a training step's time. Same loss, same gradients.
    Returns whether the switch was applied (False if TRL's internals moved).
    """
    try:
        import trl.trainer.utils as trl_utils
    except ImportError:
        return False
    original = getattr(trl_utils, "_use_triton", None)
    if original is None or getattr(original, "_kmedqa_cpu_compact", False):
        return original is not None

    def use_compact(device):
        return device.type == "cpu" or original(device)

    use_compact._kmedqa_cpu_compact = True
    trl_utils._use_triton = use_compact
    return True


def train(
    *,
    model_json: str,
    train_items: list[dict[str, Any]],
    val_items: list[dict[str, Any]],
    formats: dict[str, str],
    training: dict[str, Any],
    seed: int,
    **outputs: Unpack[StageOutputs],
) -> dict[str, Any]:
    """Train one LoRA adapter and write adapter, per-step loss log and summary."""
    from datasets import Dataset

    # department balancing (training.balance): oversampled items, or per-example loss weights
    train_items, weights, balance = apply_balance(train_items, training.get("balance"), seed)

    def datasets(tok, tkw):
        records = to_prompt_completion(train_items, formats, tok, tkw)
        if weights is not None:
            for rec, w in zip(records, weights, strict=True):
                rec[WEIGHT_COLUMN] = w
        train_ds = Dataset.from_list(records)
        val_ds = (
            Dataset.from_list(to_prompt_completion(val_items, formats, tok, tkw))
            if val_items
            else None
        )
        return train_ds, val_ds

    return fit(
        model_json=model_json,
        datasets=datasets,
        training=training,
        args=dict(training.get("args", {})),
        seed=seed,
        **outputs,
        summary_extra={"n_train": len(train_items), "n_val": len(val_items)},
        summary_after={"balance": balance} if balance else None,
        weighted=weights is not None,
    )


def fit(
    *,
    model_json: str,
    datasets: Callable[[Any, dict[str, Any] | None], tuple[Any, Any]],
    training: dict[str, Any],
    args: dict[str, Any],
    seed: int,
    adapter_dir: str,
    loss_csv: str,
    summary_json: str,
    checkpoint_dir: str,
    summary_extra: dict[str, Any],
    sft_overrides: dict[str, Any] | None = None,
    summary_after: dict[str, Any] | None = None,
    weighted: bool = False,
) -> dict[str, Any]:
    """The training machinery every stage shares (SFT here, CPT in :mod:`kmedqa.training.cpt`).

    Loads the model of ``model_json`` (NF4 for ``training.quantization: nf4``), wraps it
    in ``training.lora``, trains with TRL's ``SFTTrainer`` on ``datasets(tok, template
    kwargs) -> (train, val or None)`` with ``args`` (``training.args``-style SFTConfig
    options; ``sft_overrides`` are set after the defaults, e.g. CPT's packing), resumes
    from the newest complete checkpoint in ``checkpoint_dir``, and writes the adapter,
    the loss log and the summary (``summary_extra`` adds stage-specific counts).
    """
    import torch
    from peft import LoraConfig, prepare_model_for_kbit_training
    from transformers import set_seed
    from trl import SFTTrainer

    from kmedqa.models import load_model, load_tokenizer, read_model_info, resolve_device

    set_seed(seed)
    info = read_model_info(model_json)
    quant = training.get("quantization", "none")
    device = resolve_device(training.get("device", "auto"))
    if quant == "nf4" and device != "cuda":
        raise ConfigError(
            "training.quantization: nf4 needs CUDA; set training.device: auto on a GPU machine"
        )
    model = load_model(info, quantization=quant, device=device)
    tok = load_tokenizer(info)
    args = dict(args)
    if quant == "nf4":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=bool(args.get("gradient_checkpointing", False))
        )
    lora = training["lora"]
    peft_config = LoraConfig(
        r=lora["r"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora.get("dropout", 0.0),
        target_modules=lora["target_modules"],
        bias=lora.get("bias", "none"),
        task_type="CAUSAL_LM",
    )
    tkw = info.get("spec", {}).get("chat_template_kwargs")
    train_ds, val_ds = datasets(tok, tkw)
    if val_ds is None:
        args["eval_strategy"] = "no"
    cfg = sft_config(
        args, output_dir=checkpoint_dir, device=device, seed=seed, overrides=sft_overrides
    )
    if device == "cpu" and not score_only_label_positions_on_cpu():
        log.warning(
            "TRL internals changed: the LM head scores every position (slower, same result)"
        )

    rows: list[dict[str, Any]] = []
    step_ends: list[float] = []
    trainer_class = weighted_trainer_class() if weighted else SFTTrainer
    trainer = trainer_class(
        model=model,
        args=cfg,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        processing_class=tok,
        peft_config=peft_config,
        callbacks=[loss_logger(rows), step_timer(step_ends)],
    )
    if weighted:
        trainer.data_collator = WeightCollator(trainer.data_collator)
    params = count_parameters(trainer.model)
    resume = last_checkpoint(checkpoint_dir)
    start_step = start_tokens = 0
    if resume:
        log.info("resuming from %s", resume)
        # the log history of the resumed run is restored from the checkpoint's state
        rows.extend(history_rows(Path(resume) / "trainer_state.json"))
        start_step, start_tokens = checkpoint_progress(Path(resume) / "trainer_state.json")
    t0 = time.time()
    result = trainer.train(resume_from_checkpoint=resume)
    wall = time.time() - t0
    evaluated_last = any(
        r.get("step") == trainer.state.global_step and "val_loss" in r for r in rows
    )
    if val_ds is not None and cfg.eval_strategy != "no" and not evaluated_last:
        metrics = trainer.evaluate()  # the validation loss at the end of training
        rows.append(
            {
                "step": trainer.state.global_step,
                "epoch": trainer.state.epoch,
                "val_loss": metrics["eval_loss"],
            }
        )
    trainer.model.save_pretrained(adapter_dir)
    tok.save_pretrained(adapter_dir)
    write_loss_csv(loss_csv, rows)
    n_tokens = trainer.state.num_input_tokens_seen or None
    summary = {
        "model": info["name"],
        "model_path": info["path"],
        "quantization": quant,
        "device": device,
        "device_name": device_name(device),
        "lora": lora,
        "args": {k: v for k, v in args.items()},
        "seed": seed,
        **summary_extra,
        "params": params,
        "global_steps": trainer.state.global_step,
        # None when a resumed job found training already finished (no step run here)
        "train_loss": result.training_loss if trainer.state.global_step > start_step else None,
        "final_val_loss": rows[-1].get("val_loss") if rows else None,
        "wall_time_s": wall,
        "step_time_s": step_times(step_ends),  # this job's steps: the first, the median of the rest
        "resumed_from": os.path.basename(resume) if resume else None,
        "memory": peak_memory(),
        "versions": versions(),
        "threads": torch.get_num_threads(),
        **(summary_after or {}),  # e.g. balance: counts per stratum before and after
    }
    if info.get("cpt"):  # fine-tuned on base + a merged CPT adapter
        summary["cpt"] = info["cpt"]
    if n_tokens:
        summary["tokens_seen"] = int(n_tokens)
        # this job's tokens over this job's wall time (a resumed job restores the earlier count)
        run_tokens = int(n_tokens) - start_tokens
        summary["tokens_per_s"] = run_tokens / wall if wall > 0 and run_tokens > 0 else None
    write_json(summary_json, summary)
    return summary
