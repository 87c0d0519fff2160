"""The request loop every hosted-LLM backend shares (``models.<name>.source: api``).

A provider module (:mod:`.gemini`, :mod:`.anthropic`, :mod:`.openai`) only turns chat
messages into one SDK call (:meth:`HostedBackend.send`) and says what an SDK error is
(:meth:`HostedBackend.classify`). Everything else is here and the same for all of them:

- **Key.** Read only from the vendor's environment variable (:data:`API_KEY_ENVS`), handed
  to the SDK and nowhere else; every recorded text (errors, raw replies, log lines) is
  scrubbed of it (:func:`kmedqa.judge.base.scrub`).
- **Retries.** 408/409/429/5xx, timeouts and connection errors are retried
  ``evaluation.generation.api.max_retries`` times with exponential backoff and jitter
  (:func:`backoff_delay`, honouring ``retry-after``); the SDKs' own retries are off.
  401/403/404 stop the run (key, access or model name is wrong for every item). Past its
  retries (or on another 4xx) an item has *no reply*: it is not cached and the job, after
  asking for every other item, fails with one line saying how many and why; a rerun asks
  again only for those.
- **Replies.** ``ok`` (the answer's text), ``refused`` (the provider says it will not
  answer: a safety block, a refusal stop reason) or ``malformed`` (a reply kmedqa cannot
  read an answer from: no text, a body that is not the API's JSON; re-asked
  ``max_malformed_retries`` times first). All three are replies and are cached by
  content hash; refused and malformed lines carry ``status`` and an empty ``output`` and
  are never scored as answers.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kmedqa.errors import ConfigError, KmedqaError
from kmedqa.judge.base import scrub

log = logging.getLogger("kmedqa.generation")

PROVIDERS = ("gemini", "anthropic", "openai")
# The vendor's environment variable(s), first found wins; the key is read nowhere else.
API_KEY_ENVS: dict[str, tuple[str, ...]] = {
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "openai": ("OPENAI_API_KEY",),
}
REPLY_STATUSES = ("ok", "refused", "malformed")


def api_key(provider: str) -> str:
    for env in API_KEY_ENVS[provider]:
        if os.environ.get(env):
            return os.environ[env]
    raise ConfigError(
        f"models: a {provider} model needs its API key in {' or '.join(API_KEY_ENVS[provider])}"
    )


def backoff_delay(
    attempt: int,
    base_s: float,
    max_s: float,
    rng: random.Random,
    retry_after: float | None = None,
) -> float:
    """Exponential backoff with "equal jitter"; at least ``retry_after`` (capped at 10 min)."""
    d = min(float(max_s), float(base_s) * 2**attempt)
    d = d / 2 + rng.uniform(0, d / 2)
    if retry_after is not None:
        d = max(d, min(retry_after, 600.0))
    return d


def status_kind(code: int) -> str:
    """What an HTTP error status means for a request: retry, fatal (every item) or fail."""
    if code in (408, 409, 429) or code >= 500:
        return "retry"
    if code in (401, 403, 404):
        return "fatal"
    return "fail"


def retry_after_header(err: BaseException) -> float | None:
    resp = getattr(err, "response", None)
    headers = getattr(resp, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def is_transport_error(err: BaseException) -> bool:
    """A timeout or connection error of httpx (or its fork httpx2), which the SDKs use."""
    names = {c.__name__ for c in type(err).__mro__}
    module = type(err).__module__.split(".")[0]
    return module in ("httpx", "httpx2") and bool(
        names & {"TimeoutException", "ConnectError", "NetworkError", "RemoteProtocolError"}
    )


@dataclass
class HostedRequest:
    key: str
    item_id: str
    messages: list[dict[str, str]]
    max_tokens: int


@dataclass
class HostedReply:
    status: str  # ok | refused | malformed
    text: str = ""
    finish: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0
    hit_budget: bool = False
    detail: str | None = None  # why refused / malformed (scrubbed)


def text_reply(
    text: str,
    finish: str | None,
    tokens: dict[str, int],
    refused: str | None,
    empty: str,
    *,
    hit_budget: bool,
) -> HostedReply:
    """A provider's answer as a reply: ``refused`` (``refused`` says why; None: not
    refused), ``malformed`` when it has no text (``empty`` says why), else ``ok``."""
    if refused is not None:
        return HostedReply(status="refused", text=text, finish=finish, detail=refused, **tokens)
    if not text.strip():
        return HostedReply(status="malformed", finish=finish, detail=empty, **tokens)
    return HostedReply(status="ok", text=text, finish=finish, hit_budget=hit_budget, **tokens)


def classify_sdk_error(
    err: BaseException, sdk: Any, base_error: type, describe: Callable[[BaseException], str]
) -> tuple[str, str]:
    """:meth:`HostedBackend.classify` for the ``openai`` and ``anthropic`` SDKs (the same
    generated error classes; ``base_error`` is the SDK's root exception)."""
    if isinstance(err, sdk.APIStatusError):
        return status_kind(err.status_code), describe(err)
    if isinstance(err, sdk.APIResponseValidationError):
        return "malformed", describe(err)
    if isinstance(err, sdk.APIConnectionError):  # timeouts included
        return "retry", describe(err)
    if isinstance(err, ValueError):  # a 200 body that is not the API's JSON
        return "malformed", describe(err)
    if isinstance(err, base_error):
        return "fail", describe(err)
    return "other", str(err)


@dataclass
class HostedStats:
    calls: int = 0
    retries_transport: int = 0
    retries_malformed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0


class RequestFailed(Exception):
    """No reply for one item after its retries (not cached: a rerun asks again)."""

    def __init__(self, message: str, tries: int) -> None:
        super().__init__(message)
        self.tries = tries


class HostedBackend:
    """One provider's model; subclasses implement :meth:`make_client`, :meth:`send`, :meth:`classify`."""

    provider = ""

    def __init__(
        self,
        spec: dict[str, Any],
        settings: dict[str, Any],
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        client: Any = None,
    ) -> None:
        self.spec, self.settings = spec, settings
        self.model = spec["id"]
        self.sleep, self.rng = sleep, rng or random.Random()
        self.stats = HostedStats()
        self._secrets: list[str] = []
        if client is None:
            key = api_key(self.provider)
            self._secrets.append(key)
            client = self.make_client(key)
        self.client = client

    # -- provider hooks --------------------------------------------------------------
    def make_client(self, key: str) -> Any:
        raise NotImplementedError

    def send(self, req: HostedRequest) -> HostedReply:
        """One SDK call; SDK errors propagate (see :meth:`classify`)."""
        raise NotImplementedError

    def classify(self, err: BaseException) -> tuple[str, str]:
        """``(kind, key-free description)``: kind is retry | fatal | fail | malformed | other."""
        raise NotImplementedError

    def request_params(self) -> dict[str, Any]:
        """Everything besides the messages that changes the answer (part of the cache key)."""
        return {"temperature": self.spec.get("temperature")}

    # -- shared ----------------------------------------------------------------------
    def sdk_client(self, client_class: type, key: str) -> Any:
        """A client of the ``openai`` or ``anthropic`` SDK: its own retries off (ours are
        in :meth:`ask`), the configured timeout, the spec's ``base_url`` (None: the SDK's)."""
        return client_class(
            api_key=key,
            base_url=self.spec.get("base_url"),
            max_retries=0,
            timeout=float(self.settings["timeout_s"]),
        )

    def scrub(self, text: Any) -> Any:
        return scrub(text, self._secrets)

    def ask(self, req: HostedRequest) -> HostedReply:
        """One item: send, retry transport failures with backoff, re-ask a malformed reply."""
        s = self.settings
        tries = int(s["max_retries"]) + 1
        malformed_left = int(s["max_malformed_retries"])
        attempt = 0
        while True:
            self.stats.calls += 1
            try:
                reply = self.send(req)
            except Exception as err:
                kind, text = self.classify(err)
                if kind == "other":
                    raise
                text = self.scrub(text)
                if kind == "fatal":
                    raise KmedqaError(
                        f"the {self.provider} API refused the request for model {self.model!r} "
                        f"({text}); check {' / '.join(API_KEY_ENVS[self.provider])}, the model "
                        "id and your access"
                    ) from None
                if kind == "malformed":
                    reply = HostedReply(status="malformed", detail=text)
                elif kind == "retry" and attempt + 1 < tries:
                    delay = backoff_delay(
                        attempt,
                        s["backoff"]["base_s"],
                        s["backoff"]["max_s"],
                        self.rng,
                        retry_after_header(err),
                    )
                    self.stats.retries_transport += 1
                    log.warning(
                        "%s: request for %s failed (%s); retry %d/%d in %.1f s",
                        self.provider,
                        req.item_id,
                        text,
                        attempt + 1,
                        tries - 1,
                        delay,
                    )
                    attempt += 1
                    self.sleep(delay)
                    continue
                else:
                    raise RequestFailed(text, attempt + 1) from None
            self.stats.input_tokens += reply.input_tokens
            self.stats.output_tokens += reply.output_tokens
            self.stats.thinking_tokens += reply.thinking_tokens
            if reply.status == "malformed" and malformed_left > 0:
                malformed_left -= 1
                self.stats.retries_malformed += 1
                log.warning(
                    "%s: malformed reply for %s (%s); asking again",
                    self.provider,
                    req.item_id,
                    self.scrub(reply.detail),
                )
                continue
            reply.detail = self.scrub(reply.detail)
            return reply


def make_backend(spec: dict[str, Any], settings: dict[str, Any], **kwargs: Any) -> HostedBackend:
    provider = spec.get("provider")
    if provider == "gemini":
        from kmedqa.generation.backends.gemini import GeminiBackend

        return GeminiBackend(spec, settings, **kwargs)
    if provider == "anthropic":
        from kmedqa.generation.backends.anthropic import AnthropicGenerationBackend

        return AnthropicGenerationBackend(spec, settings, **kwargs)
    if provider == "openai":
        from kmedqa.generation.backends.openai import OpenAIBackend

        return OpenAIBackend(spec, settings, **kwargs)
    raise ConfigError(f"models: unknown api provider {provider!r} ({', '.join(PROVIDERS)})")
