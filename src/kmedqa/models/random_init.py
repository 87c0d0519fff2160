"""``source: random``: a model with a declared architecture and random weights, built locally.

For measuring cost, not quality: a model built from a published ``config.json`` with random
weights has the real shapes and so the real cost per token, with nothing to download (the
GPU variant of the demo, ``experiments/demo_gpu.yaml``, builds Gemma 3 270M's architecture
this way on the device, where the 245 MB GGUF cannot be carried). Its answers mean nothing.

The spec names ``architecture``: the ``config.json`` values (``model_type`` picks the class,
``vocab_size`` the output layer's width). The tokenizer is a byte-level BPE that kmedqa
trains on its own demo content (Korean medical text, ``kmedqa/data/demo/*.yaml``, and the
declared prompts), padded with ``<unused…>`` tokens to the architecture's ``vocab_size``:
prompts tokenize into roughly as many tokens as under a real subword tokenizer of Korean,
and every id the model can produce decodes to text. The chat template is the spec's.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from kmedqa.errors import ConfigError

SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
BPE_VOCAB = 8000  # learned subwords (before padding to the architecture's vocab_size)


def _corpus() -> list[str]:
    """kmedqa's own Korean medical text: the demo content and the declared prompts."""
    root = resources.files("kmedqa")
    texts = [
        root.joinpath("data", "demo", n).read_text(encoding="utf-8")
        for n in ("relations.yaml", "cases.yaml")
    ]
    texts.append(root.joinpath("prompts", "tasks.yaml").read_text(encoding="utf-8"))
    return [line for t in texts for line in t.splitlines() if line.strip()]


def build_tokenizer(outdir: Path, vocab_size: int, chat_template: str):
    """The BPE tokenizer described in the module doc, saved to ``outdir``; returns it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=min(BPE_VOCAB, vocab_size),
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(_corpus(), trainer=trainer)
    data = json.loads(tk.to_str())
    vocab = data["model"]["vocab"]
    if len(vocab) > vocab_size:
        raise ConfigError(
            f"architecture.vocab_size {vocab_size} is below the {len(vocab)} learned tokens"
        )
    for i in range(len(vocab), vocab_size):  # never produced by encoding; decodes as itself
        vocab[f"<unused{i}>"] = i
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(data)),
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=["<start_of_turn>", "<end_of_turn>"],
    )
    tok.chat_template = chat_template
    tok.save_pretrained(outdir)
    return tok


def build_random_model(spec: dict[str, Any], hf_dir: Path, chat_template: str, dtype) -> None:
    """Random weights in ``spec['architecture']`` (seed ``spec['seed']``) + tokenizer, saved."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    arch = dict(spec.get("architecture") or {})
    if "model_type" not in arch or "vocab_size" not in arch:
        raise ConfigError(
            f"models: source random needs architecture.model_type and architecture.vocab_size "
            f"(the config.json values of {spec['id']})"
        )
    hf_dir.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(hf_dir, int(arch["vocab_size"]), chat_template)
    eot = tok.convert_tokens_to_ids("<end_of_turn>")
    arch.update(
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=[tok.eos_token_id, eot],
    )
    model_type = arch.pop("model_type")
    cfg = AutoConfig.for_model(model_type, **arch)
    torch.manual_seed(int(spec.get("seed", 0)))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):  # initializing 270M-7B parameters on the CPU takes minutes
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    model.generation_config.eos_token_id = cfg.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(hf_dir)
