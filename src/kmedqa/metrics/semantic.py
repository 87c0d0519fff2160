"""BERTScore and BLEURT of section summaries, and the clinical-notes study's aggregate.

Both need a model, so both run only when ``evaluation.scoring`` names one (the config
keys below); otherwise their columns are absent and the tables say "not run".

- **BERTScore** is computed by the reference implementation, the ``bert-score`` package
  (Zhang et al., 2020): greedy cosine matching of one layer's contextual embeddings,
  precision / recall / F1 per item. ``model`` is any hub id or local directory
  ``AutoModel`` loads; ``num_layers`` defaults to bert-score's recommended layer for the
  hub ids in its table (e.g. ``microsoft/deberta-xlarge-mnli`` 40, ``roberta-large`` 17)
  and must be given for any other model. The bert-score hash (model, layer, idf,
  versions) is recorded next to the scores, as its authors ask for.
- **BLEURT** is a regression model over (reference, candidate) pairs: the score is the
  first logit of an ``AutoModelForSequenceClassification`` checkpoint, e.g. the PyTorch
  ports of the original BLEURT checkpoints (``Elron/bleurt-base-512``,
  ``Elron/bleurt-large-512``). BLEURT-20 is published for TensorFlow; its community
  PyTorch port (``model_type: bleurt``) needs the ``bleurt-pytorch`` package, which does
  not import with transformers 5, so such a checkpoint stops with a message.
- **Aggregate** (``summary_aggregate``): the clinical-notes study's mean of ROUGE-1,
  BERTScore F1 and BLEURT, per item (so its mean over items is the mean of the three
  means, and it can be compared pairwise); ``summary_rouge1_paper`` is the ROUGE-1.

``section_summary`` items are scored on the summary part of the output (after ``CODE#``)
against the reference summary, like ``summary_rouge*``. With ``bertscore.tasks`` naming
``short`` and/or ``descriptive`` (free-text answers, e.g. AI Hub 71875's 단답형 / 서술형),
their whole answer is scored against the reference answer too, as
``answer_bertscore_p/r/f1`` beside ``rougeL_ko``: for Korean, bert-score's own default
(``lang: ko``) is ``bert-base-multilingual-cased`` at layer 9; any multilingual encoder
and layer can be configured (``model``, ``num_layers``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from kmedqa.errors import ConfigError
from kmedqa.metrics.sections import parse_section_output, reference_section

BERTSCORE_COLUMNS = ("summary_bertscore_p", "summary_bertscore_r", "summary_bertscore_f1")
ANSWER_BERTSCORE_COLUMNS = ("answer_bertscore_p", "answer_bertscore_r", "answer_bertscore_f1")
ANSWER_TASKS = ("short", "descriptive")
BLEURT_COLUMNS = ("summary_bleurt",)
AGGREGATE_COLUMN = "summary_aggregate"
SEMANTIC_COLUMNS = (*BERTSCORE_COLUMNS, *BLEURT_COLUMNS, AGGREGATE_COLUMN)
AGGREGATE_PARTS = ("summary_rouge1_paper", "summary_bertscore_f1", "summary_bleurt")

BERTSCORE_DEFAULTS = {
    "model": None,
    "num_layers": None,
    "lang": None,
    "idf": False,
    "rescale_with_baseline": False,
    "batch_size": 16,
    "tasks": ["section_summary"],
}
BLEURT_DEFAULTS = {"model": None, "batch_size": 16, "max_length": 512}


def scoring_settings(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """``evaluation.scoring`` with defaults; ``bertscore``/``bleurt`` are None when not set."""
    cfg = dict(cfg or {})
    out: dict[str, Any] = {"device": cfg.get("device", "auto")}
    for name, defaults in (("bertscore", BERTSCORE_DEFAULTS), ("bleurt", BLEURT_DEFAULTS)):
        sub = cfg.get(name)
        if isinstance(sub, str):
            sub = {"model": sub}
        out[name] = {**defaults, **sub} if sub and sub.get("model") else None
    return out


def is_configured(cfg: dict[str, Any] | None) -> bool:
    s = scoring_settings(cfg)
    return bool(s["bertscore"] or s["bleurt"])


def _num_layers(bs: dict[str, Any]) -> int:
    if bs["num_layers"] is not None:
        return int(bs["num_layers"])
    from bert_score.utils import model2layers

    if bs["model"] in model2layers:
        return model2layers[bs["model"]]
    raise ConfigError(
        f"evaluation.scoring.bertscore.num_layers: model {bs['model']!r} is not in bert-score's "
        "table of recommended layers; set num_layers (which hidden layer's embeddings to match)"
    )


def bertscore(
    cands: Sequence[str], refs: Sequence[str], settings: dict[str, Any], device: str
) -> tuple[list[tuple[float, float, float]], str]:
    """(precision, recall, F1) per pair, and bert-score's hash of the settings."""
    import bert_score

    if not cands:
        return [], ""
    (p, r, f), hash_code = bert_score.score(
        list(cands),
        list(refs),
        model_type=settings["model"],
        num_layers=_num_layers(settings),
        lang=settings["lang"],
        idf=bool(settings["idf"]),
        rescale_with_baseline=bool(settings["rescale_with_baseline"]),
        batch_size=int(settings["batch_size"]),
        device=device,
        return_hash=True,
    )
    return list(zip(p.tolist(), r.tolist(), f.tolist(), strict=True)), hash_code


def load_bleurt(model: str, device: str):
    """Tokenizer and sequence-classification model of a BLEURT checkpoint."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from kmedqa.models import NO_HUB_KERNELS

    try:
        config = AutoConfig.from_pretrained(model)
    except ValueError as err:
        if "bleurt" in str(err).lower():
            raise ConfigError(
                f"evaluation.scoring.bleurt.model: {model!r} is a BLEURT-20 port (model_type "
                "'bleurt') that needs the bleurt-pytorch package, which does not import with "
                "transformers 5; use a checkpoint AutoModelForSequenceClassification loads "
                "(e.g. Elron/bleurt-large-512) and report which one you used"
            ) from None
        raise
    if getattr(config, "num_labels", 1) != 1:
        raise ConfigError(
            f"evaluation.scoring.bleurt.model: {model!r} has {config.num_labels} output labels; "
            "a BLEURT checkpoint is a regression model with one"
        )
    tok = AutoTokenizer.from_pretrained(model)
    net = AutoModelForSequenceClassification.from_pretrained(model, **NO_HUB_KERNELS)
    net = net.to(device).eval()
    return tok, net


def bleurt(
    cands: Sequence[str], refs: Sequence[str], settings: dict[str, Any], device: str
) -> list[float]:
    """BLEURT score of each candidate against its reference (first logit of (ref, cand))."""
    import torch
    from tqdm.auto import tqdm

    if not cands:
        return []
    tok, net = load_bleurt(settings["model"], device)
    bs = int(settings["batch_size"])
    # a pair longer than the checkpoint's positions is truncated, never an index error
    limits = [int(settings["max_length"]), getattr(net.config, "max_position_embeddings", None)]
    limits.append(tok.model_max_length if tok.model_max_length < 1e9 else None)
    max_length = min(x for x in limits if x)
    out: list[float] = []
    with torch.inference_mode():
        for i in tqdm(range(0, len(cands), bs), desc="BLEURT", unit="batch"):
            enc = tok(
                list(refs[i : i + bs]),
                list(cands[i : i + bs]),
                padding="longest",
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(device)
            out.extend(net(**enc).logits[:, 0].float().tolist())
    return out


def summary_pairs(items: Sequence[dict[str, Any]], outputs: dict[str, str]):
    """(id, predicted summary, reference summary) of every section_summary item."""
    pairs = []
    for item in items:
        if item["task"] != "section_summary":
            continue
        _, ref = reference_section(item["answer"], item["meta"])
        _, pred = parse_section_output(outputs[item["id"]])
        pairs.append((item["id"], pred, ref))
    return pairs


def answer_pairs(items: Sequence[dict[str, Any]], outputs: dict[str, str], tasks: Sequence[str]):
    """(id, answer, reference answer) of every free-text item of ``tasks`` (short, descriptive)."""
    return [
        (item["id"], outputs[item["id"]].strip(), str(item["answer"]))
        for item in items
        if item["task"] in tasks and item["task"] in ANSWER_TASKS
    ]


def semantic_scores(
    items: Sequence[dict[str, Any]], outputs: dict[str, str], cfg: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-item BERTScore/BLEURT rows (``id`` + the configured columns) and a record of how.

    ``outputs`` maps item id to the raw generation. Nothing is loaded when no item is a
    ``section_summary`` item or nothing is configured.
    """
    from kmedqa.models import resolve_device

    s = scoring_settings(cfg)
    tasks = s["bertscore"]["tasks"] if s["bertscore"] else []
    pairs = summary_pairs(items, outputs) if "section_summary" in tasks or s["bleurt"] else []
    answers = answer_pairs(items, outputs, tasks)
    rows: list[dict[str, Any]] = [{"id": iid} for iid, _, _ in pairs]
    answer_rows: list[dict[str, Any]] = [{"id": iid} for iid, _, _ in answers]
    cands = [p for _, p, _ in pairs]
    refs = [r for _, _, r in pairs]
    meta: dict[str, Any] = {
        "n_items": len(pairs),
        "n_answers": len(answers),
        "bertscore": None,
        "bleurt": None,
    }
    device = resolve_device(s["device"])
    if s["bertscore"]:
        t0 = time.perf_counter()
        summary_n = len(cands) if "section_summary" in tasks else 0
        scores, hash_code = bertscore(
            cands[:summary_n] + [a for _, a, _ in answers],
            refs[:summary_n] + [r for _, _, r in answers],
            s["bertscore"],
            device,
        )
        for row, prf in zip(rows[:summary_n], scores[:summary_n], strict=True):
            row.update(zip(BERTSCORE_COLUMNS, prf, strict=True))
        for row, prf in zip(answer_rows, scores[summary_n:], strict=True):
            row.update(zip(ANSWER_BERTSCORE_COLUMNS, prf, strict=True))
        meta["bertscore"] = {
            **s["bertscore"],
            "num_layers": _num_layers(s["bertscore"])
            if pairs or answers
            else s["bertscore"]["num_layers"],
            "hash": hash_code,
            "seconds": round(time.perf_counter() - t0, 2),
        }
    if s["bleurt"]:
        t0 = time.perf_counter()
        for row, b in zip(rows, bleurt(cands, refs, s["bleurt"], device), strict=True):
            row["summary_bleurt"] = b
        meta["bleurt"] = {**s["bleurt"], "seconds": round(time.perf_counter() - t0, 2)}
    meta["device"] = device
    return rows + answer_rows, meta


def aggregate(row: dict[str, Any]) -> float | None:
    """Mean of ROUGE-1, BERTScore F1 and BLEURT; None unless all three are there."""
    parts = [row.get(c) for c in AGGREGATE_PARTS]
    if any(v is None for v in parts):
        return None
    return sum(parts) / len(parts)
