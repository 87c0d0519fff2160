"""A stand-in for the parts of vLLM's offline API that kmedqa uses, run on transformers.

vLLM cannot be installed on the machines the tests run on, so the tests put this module in
its place (``install(monkeypatch)``). It follows vLLM's documented contract (``LLM``,
``SamplingParams``, ``LoRARequest``, token-id prompts, ``max_lora_rank`` from a fixed set,
stop strings cut from the text, the stop token kept in ``token_ids``) and computes greedy
continuations with transformers, one prompt at a time, recording every call. A test that
passes here shows kmedqa drives that contract correctly; it does not show vLLM itself runs.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

CALLS: dict[str, list] = {"LLM": [], "generate": []}
MAX_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


@dataclass
class SamplingParams:
    temperature: float = 1.0
    max_tokens: int = 16
    stop_token_ids: list[int] | None = None
    stop: list[str] | None = None


@dataclass
class LoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str


@dataclass
class _Completion:
    text: str
    token_ids: list[int] = field(default_factory=list)


@dataclass
class _RequestOutput:
    prompt_token_ids: list[int]
    outputs: list[_Completion]


class LLM:
    def __init__(self, model, revision=None, seed=0, dtype=None, enable_lora=False, **kw):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        max_rank = kw.pop("max_lora_rank", 16)
        if kw:
            raise TypeError(f"unexpected LLM arguments {sorted(kw)}")
        if enable_lora and max_rank not in MAX_LORA_RANKS:
            raise ValueError(f"max_lora_rank ({max_rank}) must be one of {MAX_LORA_RANKS}.")
        CALLS["LLM"].append(
            dict(model=model, revision=revision, seed=seed, dtype=dtype, enable_lora=enable_lora,
                 max_lora_rank=max_rank)
        )  # fmt: skip
        self.enable_lora, self.max_lora_rank = enable_lora, max_rank
        self.model = AutoModelForCausalLM.from_pretrained(model).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self._loras: dict[str, object] = {}

    def get_tokenizer(self):
        return self.tokenizer

    def _model_for(self, lora: LoRARequest | None):
        if lora is None:
            return self.model
        if not self.enable_lora:
            raise ValueError("LoRA is not enabled (enable_lora=True)")
        if lora.lora_path not in self._loras:
            import json
            from pathlib import Path

            from peft import PeftModel

            rank = json.loads((Path(lora.lora_path) / "adapter_config.json").read_text())["r"]
            if rank > self.max_lora_rank:
                raise ValueError(f"LoRA rank {rank} is greater than max_lora_rank")
            self._loras[lora.lora_path] = PeftModel.from_pretrained(self.model, lora.lora_path)
        return self._loras[lora.lora_path]

    def generate(self, prompts, sampling_params, use_tqdm=True, lora_request=None):
        import torch

        CALLS["generate"].append(
            dict(prompts=prompts, params=sampling_params, lora_request=lora_request)
        )
        if isinstance(sampling_params, list):  # vLLM: one per prompt, or one for all
            if len(sampling_params) != len(prompts):
                raise ValueError("the lengths of prompts and sampling_params must be the same")
            params_list = sampling_params
        else:
            params_list = [sampling_params] * len(prompts)
        model = self._model_for(lora_request)
        outs = []
        for p, sampling_params in zip(prompts, params_list, strict=True):
            assert sampling_params.temperature == 0.0, "kmedqa decodes greedily"
            stops = set(sampling_params.stop_token_ids or [])
            ids = torch.tensor([p["prompt_token_ids"]])
            with torch.inference_mode():
                seq = model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    do_sample=False,
                    max_new_tokens=sampling_params.max_tokens,
                    eos_token_id=sorted(stops) or None,
                    pad_token_id=self.tokenizer.pad_token_id,
                )[0, ids.shape[1] :].tolist()
            n = next((j + 1 for j, t in enumerate(seq) if t in stops), len(seq))
            token_ids = seq[:n]
            text = self.tokenizer.decode(token_ids, skip_special_tokens=True)
            for s in sampling_params.stop or []:  # vLLM leaves the stop string out
                if s in text:
                    text = text[: text.index(s)]
            outs.append(_RequestOutput(p["prompt_token_ids"], [_Completion(text, token_ids)]))
        return outs


def install(monkeypatch) -> dict[str, list]:
    """Make ``import vllm`` (and ``vllm.lora.request``) load this stand-in; returns CALLS."""
    for v in CALLS.values():
        v.clear()
    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = LLM, SamplingParams
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = LoRARequest
    vllm.lora, lora.request = lora, request
    for name, mod in (("vllm", vllm), ("vllm.lora", lora), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, mod)
    return CALLS
