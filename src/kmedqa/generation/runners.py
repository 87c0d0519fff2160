"""Batch runners of the local generation engine: transformers (``hf``, any device) and
vLLM (``vllm``, CUDA). Each takes one batch of token ids, per-row budgets and stop
strings, and returns each row's text and new-token count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kmedqa.errors import ConfigError
from kmedqa.generation.decode import greedy_decode
from kmedqa.generation.graphs import graph_decode, supports
from kmedqa.generation.prefix import prefill_prefix, shared_prefix_len
from kmedqa.generation.settings import GenerationSettings

END_OF_TURN_MARKERS = ("<end_of_turn>", "<|im_end|>", "<|eot_id|>", "<|end|>")


def stop_token_ids(tok, model, only_generation_config: bool = False) -> list[int]:
    """Ids that end a row: the generation config's EOS, the tokenizer's, end-of-turn markers
    of the chat template (``only_generation_config``: the first alone, as ``generate`` does)."""
    ids: list[int] = []
    gen_eos = getattr(model.generation_config, "eos_token_id", None)
    for x in gen_eos if isinstance(gen_eos, list) else [gen_eos]:
        if x is not None:
            ids.append(int(x))
    if only_generation_config:
        return sorted(set(ids))
    if tok.eos_token_id is not None:
        ids.append(int(tok.eos_token_id))
    template = tok.chat_template or ""
    for marker in END_OF_TURN_MARKERS:
        if marker in template:
            tid = tok.convert_tokens_to_ids(marker)
            if tid is not None and tid != tok.unk_token_id:
                ids.append(int(tid))
    return sorted(set(ids))


def row_result(tok, new: list[int], budget: int, stops: list[int]) -> tuple[str, int]:
    """Text and token count of one row: up to its first stop id (kept), at most ``budget``."""
    new = new[:budget]
    n_new = next((j + 1 for j, t in enumerate(new) if t in stops), len(new))
    return tok.decode(new[:n_new], skip_special_tokens=True), n_new


class _RowBudgets:
    """Stopping criterion: a row is finished once it has ``budgets[row]`` new tokens."""

    def __init__(self, start: int, budgets: list[int], device):
        import torch

        self.start = start
        self.budgets = torch.tensor(budgets, device=device)

    def __call__(self, input_ids, scores, **kwargs):
        return (input_ids.shape[1] - self.start) >= self.budgets


def contiguous_head_input(model) -> None:
    """Feed the output layer a contiguous copy of its input.

    The model gives its LM head ``hidden[:, -1:, :]``, a strided view. ``torch.matmul``
    folds a 3-D input into one matrix product only if the view is contiguous or the weight
    requires grad; otherwise it expands the weight over the batch and copies it (for
    Gemma's 262,144 x 640 head in bf16, 5 GB per call: 13 s of a 15 s prefill on the CPU).
    A freshly loaded model's weights require grad and fold by luck; the same model behind a
    PEFT adapter does not. The copy of one position per row costs nothing.
    """
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None or getattr(head, "_kmedqa_contiguous", False):
        return
    head.register_forward_pre_hook(lambda mod, args: (args[0].contiguous(), *args[1:]))
    head._kmedqa_contiguous = True


class HFRunner:
    """transformers ``generate`` on one batch: left padding, optional shared prefix."""

    def __init__(self, info, tok, adapter_dir, settings: GenerationSettings, model, stats):
        from kmedqa.models import load_model

        if model is None:
            model = load_model(info, quantization=settings.quantization, device=settings.device)
            if adapter_dir:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, adapter_dir)
                if settings.merge_adapter:
                    model = model.merge_and_unload()
        model.eval()
        contiguous_head_input(model)
        self.model, self.tok, self.stats = model, tok, stats
        self.cuda_graph = settings.cuda_graph
        self.share_prefix = settings.share_prefix and not settings.cuda_graph
        self.prompt_lookup = 0 if settings.cuda_graph else settings.prompt_lookup
        if self.cuda_graph and (why := supports(model)):
            raise ConfigError(f"evaluation.generation.cuda_graph: {why}; set it to false")
        self.stops = stop_token_ids(tok, model)
        self.dev = next(model.parameters()).device

    def __call__(
        self, seqs: list[list[int]], budgets: list[int], stops: list[list[str]], eos=None
    ) -> list[tuple[str, int]]:
        import torch
        from transformers import StoppingCriteriaList

        pad_id = self.tok.pad_token_id
        budget = max(budgets)
        p = shared_prefix_len(self.model, seqs, budget) if self.share_prefix else 0
        width = p + max(len(s) - p for s in seqs)
        input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        attn = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):  # prefix (if shared) | left padding | rest of the prompt
            input_ids[r, :p] = torch.tensor(s[:p], dtype=torch.long)
            attn[r, :p] = 1
            input_ids[r, width - (len(s) - p) :] = torch.tensor(s[p:], dtype=torch.long)
            attn[r, width - (len(s) - p) :] = 1
        extra = {}
        if len(set(budgets)) > 1:  # rows of smaller budgets finish early, not the batch
            extra["stopping_criteria"] = StoppingCriteriaList(
                [_RowBudgets(width, budgets, self.dev)]
            )
        with torch.inference_mode():
            if p:
                extra["past_key_values"] = prefill_prefix(
                    self.model, seqs[0][:p], len(seqs), self.dev
                )
                self.stats["prefix_tokens_shared"] += p * (len(seqs) - 1)
            if self.cuda_graph or self.prompt_lookup or any(stops):
                ids = (
                    stop_token_ids(self.tok, self.model, only_generation_config=eos is not None)
                    if any(stops)
                    else self.stops
                )
                if self.cuda_graph:  # a static cache, each step replayed from a CUDA graph
                    new = graph_decode(
                        self.model, self.tok, input_ids.to(self.dev), attn, budgets, ids, stops,
                        stats=self.stats,
                    )  # fmt: skip
                else:  # each row stops at its stop strings as it decodes
                    new = greedy_decode(
                        self.model, self.tok, input_ids.to(self.dev), attn, budgets, ids, stops,
                        past_key_values=extra.get("past_key_values"), prefix_len=p,
                        draft_tokens=self.prompt_lookup, stats=self.stats,
                    )  # fmt: skip
                return [row_result(self.tok, n, b, ids) for n, b in zip(new, budgets, strict=True)]
            out = self.model.generate(
                input_ids=input_ids.to(self.dev),
                attention_mask=attn.to(self.dev),
                do_sample=False,
                max_new_tokens=budget,
                eos_token_id=self.stops,
                pad_token_id=pad_id,
                **extra,
            )
        return [
            row_result(self.tok, out[r, width:].tolist(), budgets[r], self.stops)
            for r in range(len(seqs))
        ]


VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's LoRAConfig accepts only these


def vllm_lora_rank(rank: int) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts that holds an adapter of rank ``rank``."""
    for r in VLLM_LORA_RANKS:
        if r >= rank:
            return r
    raise ConfigError(
        f"LoRA rank {rank} is above vLLM's largest max_lora_rank (512); use backend: hf"
    )


class VLLMRunner:
    """vLLM offline engine, greedy; a LoRA adapter is served through ``LoRARequest``.

    Used when ``evaluation.generation.backend: vllm`` (vLLM installed, CUDA machine). It
    sees the same token ids, budgets and stop ids as the HF runner.
    """

    def __init__(self, info, tok, adapter_dir):
        try:
            from vllm import LLM
            from vllm.lora.request import LoRARequest
        except ModuleNotFoundError:
            raise ConfigError(
                "evaluation.generation.backend is 'vllm' but vLLM is not installed (pip install vllm), "
                "or use backend: hf"
            ) from None
        kwargs: dict[str, Any] = {
            "model": info["path"],
            "revision": info.get("revision"),
            "seed": 0,
        }
        if info.get("dtype") not in (None, "auto"):
            kwargs["dtype"] = info["dtype"]
        self.lora = None
        if adapter_dir:
            import json

            rank = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())["r"]
            kwargs.update(enable_lora=True, max_lora_rank=vllm_lora_rank(rank))
            self.lora = LoRARequest("adapter", 1, str(adapter_dir))
        self.llm, self.tok = LLM(**kwargs), tok
        gen_eos = self.llm.get_tokenizer().eos_token_id
        self.stops = sorted(
            set(stop_token_ids(tok, GenConfigView(info["path"])))
            | ({gen_eos} if gen_eos is not None else set())
        )

    def __call__(
        self, seqs: list[list[int]], budgets: list[int], stops: list[list[str]], eos=None
    ) -> list[tuple[str, int]]:
        from vllm import SamplingParams

        params = [  # one per prompt: vLLM takes a list as long as the prompts
            SamplingParams(
                temperature=0.0, max_tokens=b, stop_token_ids=self.stops, stop=stop or None
            )
            for b, stop in zip(budgets, stops, strict=True)
        ]
        outs = self.llm.generate(
            [{"prompt_token_ids": s} for s in seqs], params, lora_request=self.lora, use_tqdm=False
        )
        return [(o.outputs[0].text, len(o.outputs[0].token_ids)) for o in outs]


class GenConfigView:
    """Just enough of a model for :func:`stop_token_ids`: its generation config."""

    def __init__(self, path: str):
        from transformers import GenerationConfig

        try:
            self.generation_config = GenerationConfig.from_pretrained(path)
        except OSError:
            self.generation_config = GenerationConfig()
