"""A Hugging Face Hub model card for each trained adapter (rule ``model_card``).

    snakemake --cores 1 results/hub/<model>/<train set>       # adapter + README.md, ready to push
    huggingface-cli upload <user>/<repo> results/hub/<model>/<train set>

The card follows the Hub's convention: YAML front matter (``base_model``, ``library_name:
peft``, ``pipeline_tag``, ``language``, ``license``, ``datasets``, ``tags`` and a
``model-index`` with the run's results on each eval set and metric variant, each with its 95%
bootstrap interval over items in ``metric_args``), then a body with the training settings, the
results table and the command that reproduces the adapter. Every value comes from the training
summary, the per-item scores and the config: nothing is typed in by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict, Unpack

import yaml

from kmedqa.stats.compare import mean_ci

# kmedqa's metric columns -> (model-index metric type, readable name). Only these are carried
# into the model-index; they are the ones the studies report.
CARD_METRICS = {
    "mcq_strict": ("accuracy", "MCQ accuracy (strict: the answer's format must be followed)"),
    "mcq_lenient": ("accuracy", "MCQ accuracy (lenient: the choice anywhere in the answer)"),
    "format_ok": ("accuracy", "answer-format compliance"),
    "section_correct": ("accuracy", "section-header accuracy"),
    "rouge1_ko": ("rouge", "ROUGE-1 F1 (Korean morpheme tokens)"),
    "rougeL_ko": ("rouge", "ROUGE-L F1 (Korean morpheme tokens)"),
    "rougeL_paper": ("rouge", "ROUGE-L F1 (rouge-score default tokenizer, as the study)"),
    "summary_rouge1_paper": ("rouge", "summary ROUGE-1 F1 (rouge-score default tokenizer)"),
    "summary_bertscore_f1": ("bertscore", "summary BERTScore F1"),
    "summary_bleurt": ("bleurt", "summary BLEURT"),
    "summary_aggregate": ("aggregate", "mean(ROUGE-1, BERTScore F1, BLEURT)"),
}


def _hub_id(spec: dict[str, Any]) -> str | None:
    if spec.get("base_model"):
        return spec["base_model"]
    if spec.get("source") == "hub":
        return spec.get("id")
    return None


def metric_results(
    rows: list[dict[str, Any]], *, n_resamples: int, seed: int
) -> list[dict[str, Any]]:
    """Mean, n and 95% percentile-bootstrap CI of every card metric the rows have."""
    out = []
    for column, (mtype, name) in CARD_METRICS.items():
        values = [float(r[column]) for r in rows if r.get(column) is not None]
        if not values:
            continue
        lo, hi = mean_ci(values, n_resamples=n_resamples, seed=seed)
        out.append(
            {
                "column": column,
                "type": mtype,
                "name": name,
                "value": sum(values) / len(values),
                "n": len(values),
                "ci95": [lo, hi],
            }
        )
    return out


class CardRun(TypedDict):
    """The trained run a card describes (front matter and body alike)."""

    model: str
    train_set: str
    model_spec: dict[str, Any]
    train_summary: dict[str, Any]
    results: dict[str, list[dict[str, Any]]]  # eval set -> metric_results(...)


def card_data(
    *, datasets: list[str], hub: dict[str, Any], **card_run: Unpack[CardRun]
) -> dict[str, Any]:
    """The card's front matter as a plain dict (the Hub's metadata schema)."""
    run = f"{card_run['model']}/ft-{card_run['train_set']}"
    quant = card_run["train_summary"].get("quantization", "none")
    index_results = []
    for eval_set, metrics in card_run["results"].items():
        if not metrics:
            continue
        index_results.append(
            {
                "task": {"type": "text-generation", "name": "medical question answering"},
                "dataset": {"name": eval_set, "type": eval_set, "split": "test"},
                "metrics": [
                    {
                        "type": m["type"],
                        "value": round(m["value"], 6),
                        "name": f"{m['name']} [{m['column']}]",
                        "args": {
                            "ci95": [round(m["ci95"][0], 6), round(m["ci95"][1], 6)],
                            "n": m["n"],
                        },
                    }
                    for m in metrics
                ],
            }
        )
    data: dict[str, Any] = {
        "library_name": "peft",
        "pipeline_tag": "text-generation",
        "language": list(hub.get("language", ["ko"])),
        "license": hub.get("license", "other"),
        "datasets": list(datasets),
        "tags": ["kmedqa", "lora", *(["qlora"] if quant == "nf4" else []), "medical", "peft"],
        "model-index": [{"name": f"kmedqa-{run.replace('/', '-')}", "results": index_results}],
    }
    base = _hub_id(card_run["model_spec"])
    if base:
        data["base_model"] = base
    return data


def _body(*, study: str, configfile: str | None, **run: Unpack[CardRun]) -> str:
    model, train_set, model_spec = run["model"], run["train_set"], run["model_spec"]
    train_summary, results = run["train_summary"], run["results"]
    lora = train_summary.get("lora", {})
    args = train_summary.get("args", {})
    base = _hub_id(model_spec) or f"{model_spec.get('source')}: {model_spec.get('id')}"
    lines = [
        f"# {model} fine-tuned on {train_set} (kmedqa study `{study}`)",
        "",
        f"A LoRA adapter for `{base}`, trained and evaluated by the kmedqa workflow. "
        "The numbers below are computed by the workflow from its own outputs.",
        "",
        *_cpt_note(model, train_summary),
        "## Training",
        "",
        "| setting | value |",
        "| --- | --- |",
        f"| quantization of the base during training | {train_summary.get('quantization')} |",
        f"| LoRA r / alpha / dropout | {lora.get('r')} / {lora.get('alpha')} / "
        f"{lora.get('dropout')} |",
        f"| target modules | {', '.join(lora.get('target_modules', []))} |",
        f"| training items | {train_summary.get('n_train')} |",
        f"| optimizer steps | {train_summary.get('global_steps')} |",
        f"| learning rate | {args.get('learning_rate')} |",
        f"| seed | {train_summary.get('seed')} |",
        f"| final validation loss | {train_summary.get('final_val_loss')} |",
        "",
        "## Results (mean over items, 95% percentile bootstrap CI over items)",
        "",
        "| eval set | metric | n | value | 95% CI |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for eval_set, metrics in results.items():
        for m in metrics:
            lines.append(
                f"| {eval_set} | {m['column']} | {m['n']} | {m['value']:.4f} | "
                f"[{m['ci95'][0]:.4f}, {m['ci95'][1]:.4f}] |"
            )
    cfg = f" --configfile {configfile}" if configfile else ""
    lines += [
        "",
        "## Reproduce",
        "",
        "```bash",
        f"snakemake --cores 1 --resources gpu=1{cfg} results/hub/{model}/{train_set}",
        "```",
        "",
    ]
    return "\n".join(lines)


def _cpt_note(model: str, train_summary: dict[str, Any]) -> list[str]:
    """A train set fine-tuned after continued pre-training: the adapter's base is the merge."""
    cpt = train_summary.get("cpt")
    if not cpt:
        return []
    return [
        f"**Base + CPT.** This adapter was trained on `{model}` merged with a continued "
        f"pre-training LoRA on the corpus `{cpt['corpus']}` (results/cpt/{model}/"
        f"{cpt['corpus']}/merged), not on the base alone: load it onto that merged model "
        "(publish the merged model or the CPT adapter beside it, or rebuild it with the workflow).",
        "",
    ]


def render_card(data: dict[str, Any], body: str) -> str:
    front = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    return f"---\n{front}---\n\n{body}"


def write_card(out_dir: Path, **kwargs: Any) -> str:
    """Write ``out_dir/README.md``; returns its text."""
    run = CardRun(**{k: kwargs[k] for k in CardRun.__annotations__})
    data = card_data(datasets=kwargs["datasets"], hub=kwargs.get("hub") or {}, **run)
    body = _body(study=kwargs.get("study", ""), configfile=kwargs.get("configfile"), **run)
    text = render_card(data, body)
    (out_dir / "README.md").write_text(text, encoding="utf-8")
    return text
