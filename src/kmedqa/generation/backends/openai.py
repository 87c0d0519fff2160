"""OpenAI and OpenAI-compatible servers through the ``openai`` SDK
(``models.<name>: {source: api, provider: openai, base_url: ...}``).

Key: ``OPENAI_API_KEY`` (a local vLLM or llama.cpp server ignores its value, but the SDK
and kmedqa still read it from there: set it to anything). ``base_url`` points at an
OpenAI-compatible server (``http://host:8000/v1`` for ``vllm serve``, ``http://host:8080/v1``
for llama.cpp's ``llama-server``); without it, api.openai.com. The budget is sent as
``max_completion_tokens`` to OpenAI and as ``max_tokens`` (what the compatible servers
read) when a ``base_url`` is given.

Statuses: ``message.refusal`` or ``finish_reason: content_filter`` is ``refused``; a reply
without choices or without content is ``malformed``. Reasoning tokens (counted inside
``completion_tokens`` by OpenAI) are recorded as thinking tokens.
"""

from __future__ import annotations

from typing import Any

from kmedqa.generation.backends.base import (
    HostedBackend,
    HostedReply,
    HostedRequest,
    classify_sdk_error,
    text_reply,
)


def _describe(err: BaseException) -> str:
    import openai

    if isinstance(err, openai.APIStatusError):
        body = err.body if isinstance(err.body, dict) else {}
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        return f"HTTP {err.status_code}: {inner.get('message') or type(err).__name__}"
    if isinstance(err, openai.APITimeoutError):
        return "request timed out"
    if isinstance(err, openai.APIConnectionError):
        return "connection error"
    return f"{type(err).__name__}: {err}"


class OpenAIBackend(HostedBackend):
    provider = "openai"

    def make_client(self, key: str) -> Any:
        import openai

        return self.sdk_client(openai.OpenAI, key)

    def send(self, req: HostedRequest) -> HostedReply:
        budget = "max_tokens" if self.spec.get("base_url") else "max_completion_tokens"
        params: dict[str, Any] = {
            "model": self.model,
            "messages": req.messages,
            budget: req.max_tokens,
        }
        if self.spec.get("temperature") is not None:
            params["temperature"] = float(self.spec["temperature"])
        resp = self.client.chat.completions.create(**params)
        usage = getattr(resp, "usage", None)
        details = getattr(usage, "completion_tokens_details", None)
        thinking = int(getattr(details, "reasoning_tokens", 0) or 0)
        tokens = {
            "input_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
            "output_tokens": max(0, int(getattr(usage, "completion_tokens", 0) or 0) - thinking),
            "thinking_tokens": thinking,
        }
        choices = getattr(resp, "choices", None) or []
        if not choices:
            return HostedReply(status="malformed", detail="no choices in the reply", **tokens)
        choice = choices[0]
        finish = getattr(choice, "finish_reason", None)
        msg = getattr(choice, "message", None)
        text = getattr(msg, "content", None) or ""
        refusal = getattr(msg, "refusal", None)
        refused = f"refusal: {refusal}" if refusal else None
        if finish == "content_filter" and not refusal:
            refused = "finish_reason content_filter"
        empty = f"no content (finish_reason {finish})"
        return text_reply(text, finish, tokens, refused, empty, hit_budget=finish == "length")

    def classify(self, err: BaseException) -> tuple[str, str]:
        import openai

        return classify_sdk_error(err, openai, openai.OpenAIError, _describe)
