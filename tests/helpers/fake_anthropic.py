"""A small fake of the Anthropic Messages and Message Batches API, served on loopback.

Tests point the real ``anthropic`` SDK at it (``base_url=server.url``). Behaviour is
scripted per test:

- ``server.script``: a list consumed one entry per ``POST /v1/messages``; an entry is
  ``("scores", {...})`` (a forced ``record_scores`` tool call with that input),
  ``("text", "...")`` (a text-only reply), ``("status", code)`` (an error response),
  ``("sleep", seconds)`` (reply after a delay, to provoke a client timeout, then succeed
  with valid scores), ``("echo", code)`` (an error whose message repeats the request's
  Authorization header) or a callable ``(body) -> entry``. When the script is empty the
  ``default`` entry answers (valid scores unless changed).
- Batches: ``POST /v1/messages/batches`` stores the requests; ``GET .../{id}`` answers
  ``in_progress`` for ``batch_polls_before_end`` polls, then ``ended`` with a
  ``results_url``; ``GET .../{id}/results`` returns JSONL in *reverse* order. Per
  ``custom_id`` overrides go in ``batch_results`` (``("errored", None)``,
  ``("expired", None)`` or any ``script`` entry); the rest get ``batch_default``.

Every request is recorded in ``server.requests`` as ``(method, path, headers, body)``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from helpers.loopback import LoopbackServer

VALID = {"accuracy": 4, "completeness": 3, "relevance": 5, "rationale": "참고 답안과 대체로 일치함"}


def _message(entry: tuple[str, Any], model: str, tool_name: str) -> dict[str, Any]:
    kind, value = entry
    if kind == "scores":
        content = [{"type": "tool_use", "id": "toolu_01", "name": tool_name, "input": value}]
        stop = "tool_use"
    else:  # text
        content = [{"type": "text", "text": str(value)}]
        stop = "end_turn"
    return message_body(model, content, stop, (100, 20))


def message_body(
    model: str, content: list[dict[str, Any]], stop_reason: str, usage: tuple[int, int]
) -> dict[str, Any]:
    """A Messages API reply (also fake_hosted's Anthropic route); ``usage``: (input, output)."""
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }


def _error_body(code: int) -> dict[str, Any]:
    kinds = {
        400: "invalid_request_error",
        401: "authentication_error",
        429: "rate_limit_error",
        500: "api_error",
        529: "overloaded_error",
    }
    return {
        "type": "error",
        "error": {"type": kinds.get(code, "api_error"), "message": f"fake {code}"},
    }


class FakeAnthropic(LoopbackServer):
    def __init__(self) -> None:
        self.batch_polls_before_end = 2
        self.batch_results: dict[str, Any] = {}
        self.batch_default: Any = ("scores", dict(VALID))
        self._batches: dict[str, dict[str, Any]] = {}
        super().__init__(default=("scores", dict(VALID)))

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for m, p, _, _ in self.requests if m == method and p.startswith(prefix))

    @property
    def n_messages(self) -> int:
        return sum(1 for m, p, _, _ in self.requests if m == "POST" and p == "/v1/messages")

    # -- behaviour -------------------------------------------------------------------
    def _next(self, body: Any) -> Any:
        with self._lock:
            entry = self.script.pop(0) if self.script else self.default
        if isinstance(entry, Callable):
            entry = entry(body)
        return entry

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _send(self, code: int, obj: Any, content_type: str = "application/json") -> None:
                data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("request-id", "req_fake")
                if code == 429:
                    self.send_header("retry-after", "0")
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> Any:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                body = json.loads(raw) if raw else None
                path = self.path.split("?", 1)[0]
                with fake._lock:
                    fake.requests.append((self.command, path, dict(self.headers), body))
                return path, body

            def do_POST(self) -> None:
                path, body = self._record()
                if path == "/v1/messages":
                    entry = fake._next(body)
                    tool = (body.get("tool_choice") or {}).get("name") or "record_scores"
                    if entry[0] == "status":
                        self._send(entry[1], _error_body(entry[1]))
                        return
                    if entry[0] == "echo":  # a careless server that repeats the credentials
                        body = _error_body(entry[1])
                        body["error"]["message"] = (
                            f"bad request from {self.headers.get('Authorization')}"
                        )
                        self._send(entry[1], body)
                        return
                    if entry[0] == "sleep":
                        time.sleep(entry[1])
                        entry = ("scores", dict(VALID))
                    self._send(200, _message(entry, body["model"], tool))
                elif path == "/v1/messages/batches":
                    with fake._lock:
                        bid = f"msgbatch_{len(fake._batches) + 1:03d}"
                        fake._batches[bid] = {"requests": body["requests"], "polls": 0}
                    self._send(200, fake._batch_obj(bid))
                else:
                    self._send(404, _error_body(404))

            def do_GET(self) -> None:
                path, _ = self._record()
                parts = path.strip("/").split("/")
                # v1 / messages / batches / {id} [/ results]
                if len(parts) >= 4 and parts[:3] == ["v1", "messages", "batches"]:
                    bid = parts[3]
                    if bid not in fake._batches:
                        self._send(404, _error_body(404))
                    elif len(parts) == 4:
                        with fake._lock:
                            fake._batches[bid]["polls"] += 1
                        self._send(200, fake._batch_obj(bid))
                    else:
                        self._send(200, fake._results(bid), "application/binary")
                else:
                    self._send(404, _error_body(404))

        return Handler

    def _ended(self, bid: str) -> bool:
        return self._batches[bid]["polls"] > self.batch_polls_before_end

    def _batch_obj(self, bid: str) -> dict[str, Any]:
        b = self._batches[bid]
        n = len(b["requests"])
        ended = self._ended(bid)
        counts = {
            "processing": 0 if ended else n,
            "succeeded": 0,
            "errored": 0,
            "canceled": 0,
            "expired": 0,
        }
        if ended:
            for req in b["requests"]:
                kind = self.batch_results.get(req["custom_id"], self.batch_default)[0]
                key = kind if kind in ("errored", "expired", "canceled") else "succeeded"
                counts[key] += 1
        return {
            "id": bid,
            "type": "message_batch",
            "processing_status": "ended" if ended else "in_progress",
            "request_counts": counts,
            "created_at": "2026-01-01T00:00:00Z",
            "expires_at": "2026-01-02T00:00:00Z",
            "ended_at": "2026-01-01T01:00:00Z" if ended else None,
            "results_url": f"{self.url}/v1/messages/batches/{bid}/results" if ended else None,
        }

    def _results(self, bid: str) -> bytes:
        lines = []
        for req in reversed(self._batches[bid]["requests"]):  # out of order on purpose
            cid = req["custom_id"]
            entry = self.batch_results.get(cid, self.batch_default)
            if isinstance(entry, Callable):
                entry = entry(req["params"])
            if entry[0] in ("expired", "canceled"):
                result: dict[str, Any] = {"type": entry[0]}
            elif entry[0] == "errored":
                result = {"type": "errored", "error": _error_body(500)}
            else:
                tool = (req["params"].get("tool_choice") or {}).get("name") or "record_scores"
                result = {
                    "type": "succeeded",
                    "message": _message(entry, req["params"]["model"], tool),
                }
            lines.append(json.dumps({"custom_id": cid, "result": result}))
        return ("\n".join(lines) + "\n").encode()
