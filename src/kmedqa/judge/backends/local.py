"""A local Hugging Face causal LM as judge: for data that must not leave the machine.

Loads ``AutoTokenizer`` / ``AutoModelForCausalLM.from_pretrained(judge.model)`` (a local
directory or a hub id already in the local cache), asks with the same rubric as the
Anthropic backend but for one JSON object ``{"accuracy": .., "completeness": ..,
"relevance": ..}`` instead of a tool call, decodes greedily and validates the object
against the same schema. A reply with no valid object is recorded ``invalid`` with its
raw text. Greedy decoding is deterministic, so an invalid reply is not re-asked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kmedqa.judge.base import BackendStats, JudgeReply, JudgeRequest, resolve_config, scored_reply
from kmedqa.judge.rubric import Rubric, parse_json_reply

log = logging.getLogger("kmedqa.judge")


class LocalBackend:
    name = "local"
    external = False

    def __init__(self, cfg: dict[str, Any], *, model: Any = None, tokenizer: Any = None) -> None:
        self.cfg = resolve_config(cfg)
        self.model = self.cfg["model"]
        self.stats = BackendStats()
        self._lm = model
        self._tok = tokenizer

    def _load(self) -> None:
        if self._lm is not None and self._tok is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from kmedqa.models import NO_HUB_KERNELS

        local = self.cfg["local"]
        log.info("judge: loading local judge %s", self.model)
        self._tok = AutoTokenizer.from_pretrained(self.model)
        kwargs: dict[str, Any] = dict(NO_HUB_KERNELS)
        if local.get("dtype"):
            kwargs["dtype"] = getattr(torch, str(local["dtype"]))
        self._lm = AutoModelForCausalLM.from_pretrained(self.model, **kwargs)
        self._lm.to(local.get("device") or "cpu")
        self._lm.eval()

    def prompt(self, rubric: Rubric, question: str, reference: str, answer: str) -> JudgeRequest:
        return JudgeRequest(
            key="",
            system=rubric.system(),
            user=rubric.user(question, reference, answer, mode="json"),
        )

    def _text(self, req: JudgeRequest) -> str:
        tok = self._tok
        if getattr(tok, "chat_template", None):
            msgs = [
                {"role": "system", "content": req.system},
                {"role": "user", "content": req.user},
            ]
            try:
                return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            except Exception:  # templates without a system role (e.g. some Gemma ones)
                merged = [{"role": "user", "content": req.system + "\n\n" + req.user}]
                return tok.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
        log.warning("judge: tokenizer of %s has no chat template; using a plain prompt", self.model)
        return f"{req.system}\n\n{req.user}\n"

    def generate(self, req: JudgeRequest) -> tuple[str, int, int]:
        import torch

        self._load()
        tok, lm = self._tok, self._lm
        enc = tok(self._text(req), return_tensors="pt", add_special_tokens=False)
        enc = {k: v.to(lm.device) for k, v in enc.items()}
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        with torch.no_grad():
            out = lm.generate(
                **enc,
                max_new_tokens=int(self.cfg["local"].get("max_new_tokens") or 96),
                do_sample=False,
                pad_token_id=pad,
            )
        n_in = enc["input_ids"].shape[1]
        new = out[0, n_in:]
        return tok.decode(new, skip_special_tokens=True), int(n_in), int(new.shape[0])

    def judge(
        self,
        requests: list[JudgeRequest],
        rubric: Rubric,
        on_reply: Callable[[JudgeReply], None],
        state_dir: Path,
    ) -> None:
        for req in requests:
            self.stats.calls += 1
            text, n_in, n_out = self.generate(req)
            self.stats.direct_tokens[0] += n_in
            self.stats.direct_tokens[1] += n_out
            scores, error = parse_json_reply(text, rubric)
            if scores is not None:
                reply = scored_reply(
                    req.key,
                    scores,
                    rubric,
                    raw=text,  # kept in the cache for audit; rows show raw only when invalid
                    attempts=1,
                    input_tokens=n_in,
                    output_tokens=n_out,
                    via="local",
                )
            else:
                reply = JudgeReply(
                    key=req.key,
                    status="invalid",
                    raw=text,
                    error=f"invalid reply: {error}",
                    attempts=1,
                    input_tokens=n_in,
                    output_tokens=n_out,
                    via="local",
                )
            on_reply(reply)
