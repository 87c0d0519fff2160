"""Continued pre-training (CPT): LoRA as a causal LM on a plain-text corpus, before SFT.

**Corpus** (``cpt.corpora.<name>.path``), told apart by what the path is:

- a ``.txt`` file: one document a line (blank lines skipped);
- a ``.jsonl`` file: one JSON object a line, the document in ``text_field`` (default
  ``text``); a line that is not an object, or lacks the field, or holds no text, stops
  with one line naming the file, the line and the field;
- a folder: one document per ``*.txt`` file under it (recursive, in sorted path order).

Files are UTF-8; an empty corpus is an error. ``val_fraction`` holds out a seeded share
of the documents for a validation loss.

**Training**: the loss is on every token (a language-modelling dataset, no prompt mask).
Documents are **packed**: TRL's ``wrapped`` strategy joins the tokenized documents, each
ended by EOS, and cuts the stream into blocks of ``max_length`` tokens, so no token is
dropped and no block is padded (the last may be shorter); attention crosses document
boundaries inside a block, as in GPT-style pre-training. Everything else is the SFT
stage's machinery (:func:`kmedqa.training.fit`): the same model loading and
``training.quantization``, LoRA (``cpt.lora``, default ``training.lora``), SFTConfig
options (``training.args`` updated by ``cpt.args``), checkpoints and resume, loss log and
summary.

**Then SFT starts from base + CPT, merged**: :func:`merge_cpt` loads the base model
unquantized (its declared ``dtype``), adds the CPT LoRA delta into the weights
(``merge_and_unload``) and saves a plain transformers checkpoint with its own
``model.json``; the SFT stage trains a *fresh* LoRA on that model, and its runs generate
on it. Merged rather than stacked because it is the usual recipe, because QLoRA needs
it (NF4 quantizes the merged weights; two stacked adapters on a 4-bit base would keep
the CPT adapter in the forward pass of every SFT step and of every generation), and
because the SFT adapter then is an ordinary single adapter on one base. The cost: a
full-precision copy of the model on disk, and with ``quantization: nf4`` the CPT
adapter, trained against the NF4 weights, is merged into the unquantized ones (the
usual QLoRA merge; the difference is the NF4 rounding error).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from kmedqa.errors import ConfigError, InputError
from kmedqa.io import json_object_line, write_json

if TYPE_CHECKING:
    from kmedqa.training import StageOutputs

log = logging.getLogger(__name__)


def read_corpus(path: str | Path, text_field: str = "text") -> list[str]:
    """The documents of a CPT corpus (see the module doc for the three layouts)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise InputError("folder holds no *.txt file (one document per file)", file=path)
        docs = [_read(p).strip() for p in files]
        docs = [d for d in docs if d]
    elif path.is_file() and path.suffix == ".txt":
        docs = [line.strip() for line in _read(path).splitlines() if line.strip()]
    elif path.is_file() and path.suffix == ".jsonl":
        docs = []
        for n, line in enumerate(_read(path).splitlines(), 1):
            if not line.strip():
                continue
            text = json_object_line(line, n, path).get(text_field)
            if not isinstance(text, str) or not text.strip():
                raise InputError(
                    f"line {n}: no text (set cpt.corpora.<name>.text_field if the document is in another field)",
                    file=path,
                    field=text_field,
                )
            docs.append(text.strip())
    elif path.exists():
        raise InputError("a CPT corpus is a .txt file, a .jsonl file or a folder", file=path)
    else:
        raise ConfigError(
            f"cpt corpus {path} does not exist; put the corpus there (see README, "
            "'Continued pre-training') or change cpt.corpora.<name>.path"
        )
    if not docs:
        raise InputError("the corpus holds no document", file=path)
    return docs


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text ({err.reason} at byte {err.start})", file=path) from None


def split_documents(docs: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Seeded hold-out of ``round(val_fraction * n)`` documents (order kept on both sides)."""
    n_val = round(val_fraction * len(docs))
    if n_val == 0:
        return list(docs), []
    if n_val >= len(docs):
        raise ConfigError("cpt.corpora.<name>.val_fraction leaves no training document")
    held = set(random.Random(seed).sample(range(len(docs)), n_val))
    return (
        [d for i, d in enumerate(docs) if i not in held],
        [d for i, d in enumerate(docs) if i in held],
    )


# The CPT stage's fixed SFTConfig settings: plain LM loss, packed blocks.
CPT_SFT_OVERRIDES = {
    "packing": True,
    "packing_strategy": "wrapped",
    "completion_only_loss": False,
    "dataset_text_field": "text",
}


def cpt_settings(training: dict[str, Any], cpt: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    """(training settings, SFTConfig args) of the CPT stage: ``cpt.lora``/``cpt.args`` over
    ``training.lora``/``training.args``."""
    stage = {**training, "lora": cpt.get("lora") or training["lora"]}
    args = {**training.get("args", {}), **cpt.get("args", {})}
    fixed = sorted(set(args) & set(CPT_SFT_OVERRIDES))
    if fixed:
        raise ConfigError(
            f"cpt.args: {', '.join(fixed)} are fixed by the CPT stage (packed causal-LM loss)"
        )
    return stage, args


def train_cpt(
    *,
    model_json: str,
    corpus: str,
    corpus_name: str,
    corpus_spec: dict[str, Any],
    training: dict[str, Any],
    cpt: dict[str, Any],
    seed: int,
    **outputs: Unpack[StageOutputs],
) -> dict[str, Any]:
    """Train the CPT LoRA on ``corpus``; write adapter, loss log and summary."""
    from datasets import Dataset

    from kmedqa.training import fit

    docs = read_corpus(corpus, corpus_spec["text_field"])
    train_docs, val_docs = split_documents(docs, corpus_spec["val_fraction"], seed)
    stage, args = cpt_settings(training, cpt)
    log.info(
        "CPT on %s: %d training / %d validation documents", corpus, len(train_docs), len(val_docs)
    )

    def datasets(tok, tkw):
        val = Dataset.from_list([{"text": d} for d in val_docs]) if val_docs else None
        return Dataset.from_list([{"text": d} for d in train_docs]), val

    return fit(
        model_json=model_json,
        datasets=datasets,
        training=stage,
        args=args,
        seed=seed,
        **outputs,
        summary_extra={
            "stage": "cpt",
            "corpus": corpus_name,
            "corpus_path": str(corpus),
            "n_train": len(train_docs),
            "n_val": len(val_docs),
            "train_chars": sum(map(len, train_docs)),
            "packing": "wrapped: documents + EOS joined, cut into max_length blocks",
            "fixed_settings": dict(CPT_SFT_OVERRIDES),  # loss on every token, packed
        },
        sft_overrides=CPT_SFT_OVERRIDES,
    )


def merge_cpt(
    *,
    model_json: str,
    adapter_dir: str,
    corpus_name: str,
    hf_dir: str,
    merged_json: str,
    device: str = "cpu",
) -> dict[str, Any]:
    """Merge the CPT adapter into the base weights; write them to ``hf_dir`` and ``merged_json``.

    The new ``model.json`` keeps the base's name, chat template, dtype and spec, points
    at the merged checkpoint and records the CPT stage under ``cpt`` (the SFT summary
    carries it on).
    """
    from peft import PeftModel

    from kmedqa.models import load_model, load_tokenizer, read_model_info

    info = read_model_info(model_json)
    base = load_model(info, quantization="none", device=device)
    tok = load_tokenizer(info)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    hf = Path(hf_dir)
    merged.save_pretrained(hf)
    tok.save_pretrained(hf)
    new = {
        **info,
        "source": "local",
        "path": str(hf.resolve()),
        "revision": None,
        "cpt": {
            "corpus": corpus_name,
            "adapter": str(adapter_dir),
            "base_path": info["path"],
            "merged": "LoRA delta added into the base weights (merge_and_unload)",
        },
    }
    write_json(merged_json, new)
    return new
