"""The loopback HTTP server under the fake vendor APIs (fake_anthropic, fake_hosted).

A subclass defines ``_handler()`` (a ``BaseHTTPRequestHandler`` class) and its own state;
this base holds the scripted replies, the recorded requests, the lock and the server's
lifecycle: ``url``, ``start()`` (returns the server), ``stop()``; :func:`server_fixture`
makes a test module's ``server`` fixture of a subclass.
"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Any, Self

import pytest


class LoopbackServer:
    def __init__(self, default: Any) -> None:
        self.script: list[Any] = []
        self.default: Any = default
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def _handler(self) -> type:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def server_fixture(cls: type[LoopbackServer]):
    """A function-scoped ``server`` fixture: a started ``cls()``, stopped after the test
    (assign it as ``server = server_fixture(FakeX)`` in the test module)."""

    @pytest.fixture
    def server():
        s = cls().start()
        yield s
        s.stop()

    return server
