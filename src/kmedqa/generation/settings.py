"""What a run is generated on, and whether an output used up its token budget.

``evaluation.generation.adapter_base`` chooses the base model a fine-tuned run is
generated on (:func:`inference_quantization`); :func:`hit_budget` says whether an output
stopped at its ``max_new_tokens`` (recorded per generation line, a truncation rate per run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kmedqa.errors import ConfigError
from kmedqa.generation.lookup import PROMPT_LOOKUP

ADAPTER_BASES = ("training", "none", "nf4")


def inference_quantization(
    variant: str, generation: dict[str, Any] | None, training: dict[str, Any] | None
) -> str:
    """How a run's base model is loaded for generation: ``none`` or ``nf4``.

    A fine-tuned run (``ft-*``) is generated on ``evaluation.generation.adapter_base``:
    ``training`` (the default) = the quantization it was trained on (an NF4-trained QLoRA
    adapter on an NF4 base), ``none`` = unquantized (``models.<name>.dtype``), ``nf4``.
    Base and icl runs are the model as published: unquantized.
    """
    base = (generation or {}).get("adapter_base", "training")
    if base not in ADAPTER_BASES:
        raise ConfigError(
            f"evaluation.generation.adapter_base: {base!r} is not one of {', '.join(ADAPTER_BASES)}"
        )
    if not variant.startswith("ft-"):
        return "none"
    if base == "training":
        return (training or {}).get("quantization", "none")
    return base


def hit_budget(n_new: int, budget: int, cut_by_stop_string: bool = False) -> bool:
    """Whether an output was cut by its token budget rather than ending by itself.

    ``n_new == budget`` (an output whose end-of-turn token is exactly its budget-th token
    counts too: at most an over-count); an output cut at a stop string was not.
    """
    return n_new >= budget and not cut_by_stop_string


def check_quantization(quantization: str, backend: str) -> None:
    if quantization not in ("none", "nf4"):
        raise ConfigError(f"inference base quantization {quantization!r} is not none or nf4")
    if quantization != "nf4":
        return
    if backend != "hf":
        raise ConfigError(
            "evaluation.generation.adapter_base resolves to nf4, which kmedqa runs only with "
            "backend: hf; set backend: hf, or adapter_base: none to generate on an unquantized base"
        )
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            "evaluation.generation.adapter_base resolves to nf4 (the adapter's training "
            "quantization) but CUDA is not available; run on a GPU, or set "
            "evaluation.generation.adapter_base: none to generate on an unquantized base"
        )


@dataclass(frozen=True)
class GenerationSettings:
    """How a local run is generated: the knobs of ``evaluation.generation`` (validated, with
    their defaults in ``schemas/config.schema.yaml``) and the run's base quantization.

    ``backend``: ``hf`` (transformers, any device) or ``vllm`` (CUDA, LoRA through
    ``LoRARequest``). ``max_new_tokens``: per-task budgets that override the prompt
    format's. ``quantization``: how the base model is loaded (``none`` or ``nf4``, see
    :func:`inference_quantization`). ``share_prefix``: prefill the prompt prefix that all
    rows of a batch share once per batch (see :func:`kmedqa.generation.prefix.shared_prefix_len`).
    ``cuda_graph``: decode over a static cache replayed from CUDA graphs
    (:mod:`kmedqa.generation.graphs`; no prefix sharing and no prompt lookup then).
    ``prompt_lookup``: prompt-lookup guesses fed per row and decode step
    (:mod:`kmedqa.generation.lookup`; 0: one token per step).
    """

    batch_size: int = 16
    device: str = "auto"
    backend: str = "hf"
    merge_adapter: bool = False
    max_new_tokens: dict[str, int] | None = None
    quantization: str = "none"
    share_prefix: bool = True
    cuda_graph: bool = False
    prompt_lookup: int = PROMPT_LOOKUP

    @classmethod
    def from_config(cls, generation: dict[str, Any], quantization: str) -> GenerationSettings:
        """From a validated ``evaluation.generation`` block and the run's base quantization."""
        return cls(
            batch_size=int(generation["batch_size"]),
            device=generation["device"],
            backend=generation["backend"],
            merge_adapter=bool(generation["merge_adapter"]),
            cuda_graph=bool(generation.get("cuda_graph", False)),
            prompt_lookup=int(generation.get("prompt_lookup", PROMPT_LOOKUP)),
            max_new_tokens=generation.get("max_new_tokens"),
            quantization=quantization,
        )
