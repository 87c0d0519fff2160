"""Gemini through the ``google-genai`` SDK (``models.<name>: {source: api, provider: gemini}``).

Key: ``GEMINI_API_KEY`` (else ``GOOGLE_API_KEY``). The SDK's own retries stay off (its
default without ``HttpRetryOptions``); ours are in :mod:`.base`.

``thinking_budget`` (declared in the model spec; Gemini 2.5 Flash: -1 dynamic, the API's
default, 0 off, or a number of tokens) is sent as ``ThinkingConfig(thinking_budget=...)``.
Thinking tokens count toward ``max_output_tokens``, so kmedqa asks for the answer budget
plus the thinking budget (dynamic: plus :data:`DYNAMIC_THINKING_MAX`, 2.5 Flash's
largest budget); thinking tokens are recorded apart and billed as output.

Statuses: a prompt blocked (``prompt_feedback.block_reason``) or a candidate that ended
for SAFETY, RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII or LANGUAGE is ``refused``;
a reply without candidates or without answer text (other reasons) is ``malformed``.
"""

from __future__ import annotations

from typing import Any

from kmedqa.generation.backends.base import (
    HostedBackend,
    HostedReply,
    HostedRequest,
    is_transport_error,
    status_kind,
    text_reply,
)

DYNAMIC_THINKING_MAX = 24576
REFUSAL_REASONS = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "LANGUAGE",
    "IMAGE_SAFETY",
}


def _name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "name", value)).split(".")[-1]


class GeminiBackend(HostedBackend):
    provider = "gemini"

    def make_client(self, key: str) -> Any:
        from google import genai
        from google.genai import types

        opts: dict[str, Any] = {"timeout": int(float(self.settings["timeout_s"]) * 1000)}
        if self.spec.get("base_url"):
            opts["base_url"] = self.spec["base_url"]
        return genai.Client(api_key=key, http_options=types.HttpOptions(**opts))

    def request_params(self) -> dict[str, Any]:
        return {
            "temperature": self.spec.get("temperature"),
            "thinking_budget": self.spec.get("thinking_budget"),
        }

    def max_output_tokens(self, budget: int) -> int:
        tb = self.spec.get("thinking_budget")
        if tb is None or tb == 0:
            return budget
        return budget + (DYNAMIC_THINKING_MAX if tb < 0 else int(tb))

    def send(self, req: HostedRequest) -> HostedReply:
        from google.genai import types

        system = [m["content"] for m in req.messages if m["role"] == "system"]
        contents = [
            types.Content(
                role="model" if m["role"] == "assistant" else "user",
                parts=[types.Part(text=m["content"])],
            )
            for m in req.messages
            if m["role"] != "system"
        ]
        cfg: dict[str, Any] = {"max_output_tokens": self.max_output_tokens(req.max_tokens)}
        if system:
            cfg["system_instruction"] = "\n\n".join(system)
        if self.spec.get("temperature") is not None:
            cfg["temperature"] = float(self.spec["temperature"])
        if self.spec.get("thinking_budget") is not None:
            cfg["thinking_config"] = types.ThinkingConfig(
                thinking_budget=int(self.spec["thinking_budget"])
            )
        resp = self.client.models.generate_content(
            model=self.model, contents=contents, config=types.GenerateContentConfig(**cfg)
        )
        return self.parse(resp)

    def parse(self, resp: Any) -> HostedReply:
        usage = getattr(resp, "usage_metadata", None)
        tokens = {
            "input_tokens": int(getattr(usage, "prompt_token_count", 0) or 0),
            "output_tokens": int(getattr(usage, "candidates_token_count", 0) or 0),
            "thinking_tokens": int(getattr(usage, "thoughts_token_count", 0) or 0),
        }
        feedback = getattr(resp, "prompt_feedback", None)
        block = _name(getattr(feedback, "block_reason", None))
        if block and block != "BLOCKED_REASON_UNSPECIFIED":
            return HostedReply(
                status="refused", finish=block, detail=f"prompt blocked: {block}", **tokens
            )
        cands = getattr(resp, "candidates", None) or []
        if not cands:
            return HostedReply(status="malformed", detail="no candidates in the reply", **tokens)
        cand = cands[0]
        finish = _name(getattr(cand, "finish_reason", None))
        parts = getattr(getattr(cand, "content", None), "parts", None) or []
        text = "".join(p.text for p in parts if getattr(p, "text", None) and not p.thought)
        refused = f"finish_reason {finish}" if finish in REFUSAL_REASONS else None
        empty = f"no answer text (finish_reason {finish})"
        return text_reply(text, finish, tokens, refused, empty, hit_budget=finish == "MAX_TOKENS")

    def classify(self, err: BaseException) -> tuple[str, str]:
        from google.genai import errors

        if isinstance(err, errors.APIError):
            code = int(err.code or 0)
            return status_kind(code), f"HTTP {code} {err.status or ''}: {err.message or ''}".strip()
        if is_transport_error(err):
            return "retry", f"{type(err).__name__} (timeout or connection error)"
        if isinstance(err, ValueError):  # a 200 body that is not the API's JSON
            return "malformed", f"unreadable reply: {type(err).__name__}"
        return "other", str(err)
