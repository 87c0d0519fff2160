"""Chat templates: each model's own, used through ``apply_chat_template``.

* A template without a system role (Gemma 2, for one, raises on it) gets the system
  prompt merged into the first user turn; so does one that silently drops it.
* Template options come from the model spec (``models.<name>.chat_template_kwargs``):
  Qwen3 with ``enable_thinking: false``; Llama 3.x with a pinned ``date_string`` so that
  prompts do not change with the calendar.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

_PROBE_SYSTEM = "kmedqa-system-probe"


def supports_system(tok, template_kwargs: dict[str, Any] | None = None) -> bool:
    return _supports_system(tok.chat_template or "", id(tok), _freeze(template_kwargs), tok)


def _freeze(d: dict[str, Any] | None):
    return tuple(sorted((d or {}).items()))


@lru_cache(maxsize=32)
def _supports_system(template: str, tok_id: int, kwargs: tuple, tok) -> bool:
    messages = [{"role": "system", "content": _PROBE_SYSTEM}, {"role": "user", "content": "q"}]
    try:
        text = tok.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, **dict(kwargs)
        )
    except Exception:  # jinja raise_exception("System role not supported") and the like
        return False
    return _PROBE_SYSTEM in text


def fit_messages(
    messages: list[dict[str, str]], tok, template_kwargs: dict[str, Any] | None = None
) -> list[dict[str, str]]:
    """Merge a leading system message into the first user turn if the template has no system role."""
    if not messages or messages[0]["role"] != "system" or supports_system(tok, template_kwargs):
        return messages
    system, rest = messages[0]["content"], [dict(m) for m in messages[1:]]
    for m in rest:
        if m["role"] == "user":
            m["content"] = f"{system}\n\n{m['content']}"
            break
    return rest


def render_prompt(
    tok, messages: list[dict[str, str]], template_kwargs: dict[str, Any] | None = None
) -> str:
    """The exact text the model sees before it answers."""
    msgs = fit_messages(messages, tok, template_kwargs)
    return tok.apply_chat_template(
        msgs, tokenize=False, add_generation_prompt=True, **(template_kwargs or {})
    )
