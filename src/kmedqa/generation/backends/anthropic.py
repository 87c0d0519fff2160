"""Claude through the ``anthropic`` SDK (``models.<name>: {source: api, provider: anthropic}``).

Key: ``ANTHROPIC_API_KEY``. The client is built as the judge's is
(:mod:`kmedqa.judge.backends.anthropic`: ``max_retries=0``, retries are ours) and SDK
errors are described by the judge's :func:`~kmedqa.judge.backends.anthropic_sdk.describe_error`
(key-free). No sampling parameter is sent unless the spec declares ``temperature``
(current Claude models reject some). A reply with ``stop_reason: refusal`` is
``refused``; one without text is ``malformed``.
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


class AnthropicGenerationBackend(HostedBackend):
    provider = "anthropic"

    def make_client(self, key: str) -> Any:
        import anthropic

        return self.sdk_client(anthropic.Anthropic, key)

    def send(self, req: HostedRequest) -> HostedReply:
        system = [m["content"] for m in req.messages if m["role"] == "system"]
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": req.max_tokens,
            "messages": [m for m in req.messages if m["role"] != "system"],
        }
        if system:
            params["system"] = "\n\n".join(system)
        if self.spec.get("temperature") is not None:
            params["temperature"] = float(self.spec["temperature"])
        msg = self.client.messages.create(**params)
        usage = getattr(msg, "usage", None)
        tokens = {
            "input_tokens": int(getattr(usage, "input_tokens", 0) or 0),
            "output_tokens": int(getattr(usage, "output_tokens", 0) or 0),
        }
        stop = getattr(msg, "stop_reason", None)
        text = "".join(
            getattr(b, "text", "") or "" for b in (msg.content or []) if b.type == "text"
        )
        refused = "stop_reason refusal" if stop == "refusal" else None
        empty = f"no text (stop_reason {stop})"
        return text_reply(text, stop, tokens, refused, empty, hit_budget=stop == "max_tokens")

    def classify(self, err: BaseException) -> tuple[str, str]:
        import anthropic

        from kmedqa.judge.backends.anthropic_sdk import describe_error

        return classify_sdk_error(err, anthropic, anthropic.AnthropicError, describe_error)
