"""What the ``anthropic`` SDK's errors and replies mean to the judge.

:func:`classify_error` sorts an SDK exception into retry / fatal / fail / other (the
rules in :mod:`kmedqa.judge.backends.anthropic`), :func:`describe_error` says what it was
without the key, :func:`extract_scores` reads the rubric's tool call out of a Messages
API reply and :func:`usage_tokens` its token counts. The generation backend for Claude
(:mod:`kmedqa.generation.backends.anthropic`) describes SDK errors with the same function.
"""

from __future__ import annotations

import json
from typing import Any

from kmedqa.judge.base import scrub
from kmedqa.judge.rubric import Rubric


class TransportError(Exception):
    """No reply after the transport retries (or on another 4xx): not cached, asked again."""

    def __init__(self, message: str, tries: int) -> None:
        super().__init__(message)
        self.tries = tries


def describe_error(err: BaseException) -> str:
    """A short, key-free description of an SDK error."""
    import anthropic

    if isinstance(err, anthropic.APIStatusError):
        kind = getattr(err, "type", None) or type(err).__name__
        msg = getattr(err, "api_message", None) or ""
        return scrub(f"HTTP {err.status_code} {kind}: {msg}".strip().rstrip(":"))
    if isinstance(err, anthropic.APITimeoutError):
        return "request timed out"
    if isinstance(err, anthropic.APIConnectionError):
        return scrub(f"connection error: {err}")
    return scrub(f"{type(err).__name__}: {err}")


def classify_error(err: BaseException) -> str:
    """retry | fatal (every item: key, access, model) | fail (this item) | other (a bug)."""
    import anthropic

    from kmedqa.generation.backends.base import status_kind  # shared with generation

    if isinstance(err, anthropic.APIStatusError):
        return status_kind(err.status_code)
    if isinstance(err, anthropic.APIConnectionError):  # timeouts included
        return "retry"
    if isinstance(err, anthropic.AnthropicError):
        return "fail"
    return "other"


def extract_scores(message: Any, rubric: Rubric) -> tuple[dict[str, Any] | None, str, str | None]:
    """``(scores, raw, error)`` from a Messages API reply (SDK object or plain dict)."""

    def get(obj: Any, name: str) -> Any:
        return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)

    blocks = get(message, "content") or []
    uses = [
        b for b in blocks if get(b, "type") == "tool_use" and get(b, "name") == rubric.tool_name
    ]
    if not uses:
        texts = [get(b, "text") or "" for b in blocks if get(b, "type") == "text"]
        raw = "\n".join(texts)
        return (
            None,
            raw,
            f"no {rubric.tool_name} tool call (stop_reason={get(message, 'stop_reason')})",
        )
    inp = get(uses[0], "input")
    raw = json.dumps(inp, ensure_ascii=False, sort_keys=True)
    scores, err = rubric.validate(inp)
    if scores is None and get(message, "stop_reason") == "max_tokens":
        err = f"{err} (reply cut at max_tokens)"
    return scores, raw, err


def usage_tokens(message: Any) -> tuple[int, int]:
    """(input, output) tokens of a reply (0 where the SDK reports none)."""
    usage = getattr(message, "usage", None)
    return (
        int(getattr(usage, "input_tokens", 0) or 0),
        int(getattr(usage, "output_tokens", 0) or 0),
    )
