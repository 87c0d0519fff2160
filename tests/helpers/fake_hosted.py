"""A fake of three hosted LLM APIs on loopback, for the real SDKs (google-genai, anthropic,
openai) to talk to.

Routes: ``POST /v1beta/models/{model}:generateContent`` (Gemini), ``POST /v1/messages``
(Anthropic), ``POST /v1/chat/completions`` (OpenAI; point the SDK at ``server.url + "/v1"``).
Each request takes the next entry of ``server.script`` (else ``server.default``):

- ``("ok", text)``: a normal reply with that text (``text`` may be a callable of the
  request body's prompt text);
- ``("refuse", None)``: the provider's refusal (Gemini: prompt blocked for SAFETY;
  Anthropic: ``stop_reason: refusal``; OpenAI: ``message.refusal``);
- ``("empty", None)``: a 200 reply with no answer in it (no candidates / no content / no choices);
- ``("garbage", None)``: a 200 reply whose body is not JSON;
- ``("status", code)``: an HTTP error in the provider's error shape (429 with ``retry-after: 0``);
- ``("sleep", seconds)``: answer "ok" after a delay (to provoke a client timeout);
- ``("echo", code)``: an HTTP error whose message repeats the request's credentials (a
  careless server: the key must still never be written anywhere);
- a callable ``(request body) -> entry``.

Every request is recorded as ``(method, path, headers, body)`` in ``server.requests``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from helpers.fake_anthropic import message_body
from helpers.loopback import LoopbackServer

DEFAULT_TEXT = "GENHX#The patient reports a headache for two days."
USAGE = {"input": 120, "output": 30, "thinking": 7}


def prompt_text(body: dict[str, Any]) -> str:
    """All the text a request sends (any provider's shape)."""
    if "contents" in body:
        return "\n".join(p.get("text", "") for c in body["contents"] for p in c.get("parts", []))
    return "\n".join(str(m.get("content")) for m in body.get("messages", []))


def _gemini(kind: str, text: str) -> dict[str, Any]:
    usage = {
        "promptTokenCount": USAGE["input"],
        "candidatesTokenCount": USAGE["output"],
        "thoughtsTokenCount": USAGE["thinking"],
        "totalTokenCount": sum(USAGE.values()),
    }
    if kind == "refuse":
        return {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": usage}
    if kind == "empty":
        return {"candidates": [], "usageMetadata": usage}
    return {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
        ],
        "usageMetadata": usage,
        "modelVersion": "fake",
    }


def _anthropic(kind: str, text: str, model: str) -> dict[str, Any]:
    content = [] if kind in ("empty", "refuse") else [{"type": "text", "text": text}]
    stop = "refusal" if kind == "refuse" else "end_turn"
    return message_body(model, content, stop, (USAGE["input"], USAGE["output"]))


def _openai(kind: str, text: str, model: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": None if kind == "refuse" else text}
    if kind == "refuse":
        message["refusal"] = "I can't help with that."
    choices = [] if kind == "empty" else [{"index": 0, "message": message, "finish_reason": "stop"}]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": USAGE["input"],
            "completion_tokens": USAGE["output"] + USAGE["thinking"],
            "total_tokens": sum(USAGE.values()),
            "completion_tokens_details": {"reasoning_tokens": USAGE["thinking"]},
        },
    }


def _error(provider: str, code: int) -> dict[str, Any]:
    if provider == "gemini":
        status = {429: "RESOURCE_EXHAUSTED", 401: "UNAUTHENTICATED", 500: "INTERNAL"}
        return {
            "error": {
                "code": code,
                "message": f"fake {code}",
                "status": status.get(code, "UNAVAILABLE"),
            }
        }
    if provider == "anthropic":
        return {"type": "error", "error": {"type": "api_error", "message": f"fake {code}"}}
    return {"error": {"message": f"fake {code}", "type": "server_error", "code": None}}


class FakeHosted(LoopbackServer):
    def __init__(self) -> None:
        super().__init__(default=("ok", DEFAULT_TEXT))

    @property
    def n_posts(self) -> int:
        return sum(1 for m, *_ in self.requests if m == "POST")

    def _next(self, body: Any) -> Any:
        with self._lock:
            entry = self.script.pop(0) if self.script else self.default
        return entry(body) if callable(entry) else entry

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, code: int, data: bytes) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if code == 429:
                        self.send_header("retry-after", "0")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out
                    pass

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                path = self.path.split("?", 1)[0]
                with fake._lock:
                    fake.requests.append(("POST", path, dict(self.headers), body))
                if ":generateContent" in path:
                    provider, model = "gemini", path.rsplit("/", 1)[-1].split(":")[0]
                elif path.endswith("/messages"):
                    provider, model = "anthropic", body.get("model")
                elif path.endswith("/chat/completions"):
                    provider, model = "openai", body.get("model")
                else:
                    self._send(404, b'{"error": {"message": "no such route"}}')
                    return
                kind, value = fake._next(body)
                if kind == "echo":
                    creds = " ".join(
                        str(self.headers.get(h))
                        for h in ("x-goog-api-key", "x-api-key", "Authorization")
                        if self.headers.get(h)
                    )
                    err = _error(provider, value)
                    err["error"]["message"] = f"bad request from {creds}"
                    self._send(value, json.dumps(err).encode())
                    return
                if kind == "status":
                    self._send(value, json.dumps(_error(provider, value)).encode())
                    return
                if kind == "garbage":
                    self._send(200, b"<html>not json</html>")
                    return
                if kind == "sleep":
                    time.sleep(value)
                    kind, value = "ok", DEFAULT_TEXT
                text = value(prompt_text(body)) if isinstance(value, Callable) else (value or "")
                reply = {
                    "gemini": lambda: _gemini(kind, text),
                    "anthropic": lambda: _anthropic(kind, text, model),
                    "openai": lambda: _openai(kind, text, model),
                }[provider]()
                self._send(200, json.dumps(reply).encode())

        return Handler
