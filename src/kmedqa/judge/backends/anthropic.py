"""Claude as judge, through the ``anthropic`` SDK.

Scores come back as a call of the rubric's tool (``record_scores``): the request sends
``tools=[record_scores]`` and, by default, ``tool_choice={"type": "tool", "name":
"record_scores"}`` so the model must call it. (Some current models reject a forced tool
choice — set ``judge.tool_choice: auto`` for those; a reply without the tool call is
then an invalid reply like any other.) No ``temperature`` / ``top_p`` / ``top_k`` is
sent: current models reject sampling parameters.

Retries are ours, not the SDK's (the client is built with ``max_retries=0``):

- transport: 408, 409, 429, 5xx (529 overloaded included), timeouts and connection
  errors are retried ``judge.max_api_retries`` times with exponential backoff and
  jitter (``judge.backoff``), honouring ``retry-after`` when the server sends one;
  then the item is recorded ``invalid`` with the (scrubbed) error and is *not* cached,
  so a rerun asks again. 401/403/404 stop the run (key, permission or model name is
  wrong for every item). Other 4xx fail that item the same way as an exhausted retry.
- reply: a reply without the tool call, or whose input fails the rubric's schema
  (missing score, out of range, not an integer), is asked again
  ``judge.max_invalid_retries`` times; then it is recorded ``invalid`` with the raw
  reply and cached.

Large sets (``>= judge.batch_threshold`` uncached requests) go through the Message
Batches API (:mod:`kmedqa.judge.backends.anthropic_batch`: resumable, failed requests
re-asked directly).
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kmedqa.errors import ConfigError, KmedqaError
from kmedqa.judge.backends.anthropic_batch import BatchJudging
from kmedqa.judge.backends.anthropic_sdk import (
    TransportError,
    classify_error,
    describe_error,
    extract_scores,
    usage_tokens,
)
from kmedqa.judge.base import (
    API_KEY_ENV,
    BackendStats,
    JudgeReply,
    JudgeRequest,
    resolve_config,
    scored_reply,
)
from kmedqa.judge.rubric import Rubric

log = logging.getLogger("kmedqa.judge")


class AnthropicBackend(BatchJudging):
    name = "anthropic"
    external = True

    def __init__(
        self,
        cfg: dict[str, Any],
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        client: Any = None,
    ) -> None:
        self.cfg = resolve_config(cfg)
        self.model = self.cfg["model"]
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.stats = BackendStats()
        if client is None:
            key = os.environ.get(API_KEY_ENV)
            if not key:
                raise ConfigError(f"{API_KEY_ENV} is not set")
            import anthropic

            client = anthropic.Anthropic(
                api_key=key,
                base_url=self.cfg["base_url"],
                max_retries=0,  # retries are ours: see the module docstring
                timeout=float(self.cfg["timeout_s"]),
            )
        self.client = client

    # ---------------------------------------------------------------- requests
    def prompt(self, rubric: Rubric, question: str, reference: str, answer: str) -> JudgeRequest:
        return JudgeRequest(
            key="",
            system=rubric.system(),
            user=rubric.user(question, reference, answer, mode="tool"),
        )

    def params(self, req: JudgeRequest, rubric: Rubric) -> dict[str, Any]:
        tool = {
            k: rubric.tool[k] for k in ("name", "description", "input_schema") if k in rubric.tool
        }
        if self.cfg["tool_choice"] == "tool":
            choice = {"type": "tool", "name": rubric.tool_name}
        else:
            choice = {"type": "auto"}
        p: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.cfg["max_tokens"],
            "system": req.system,
            "messages": [{"role": "user", "content": req.user}],
            "tools": [tool],
            "tool_choice": choice,
        }
        p.update(self.cfg["extra_params"])
        return p

    # ---------------------------------------------------------------- transport
    def _backoff(self, attempt: int, err: BaseException) -> float:
        from kmedqa.generation.backends.base import (  # shared with generation
            backoff_delay,
            retry_after_header,
        )

        b = self.cfg["backoff"]
        return backoff_delay(attempt, b["base_s"], b["max_s"], self.rng, retry_after_header(err))

    def _call(self, what: str, fn: Callable[..., Any], *, batch: bool = False, **kw: Any) -> Any:
        tries = self.cfg["max_api_retries"] + 1
        for attempt in range(tries):
            if batch:
                self.stats.batch_api_calls += 1
            else:
                self.stats.calls += 1
            try:
                return fn(**kw)
            except Exception as err:
                kind = classify_error(err)
                if kind == "other":
                    raise
                text = describe_error(err)
                if kind == "fatal":
                    raise KmedqaError(
                        f"Anthropic API refused the {what} ({text}); check the key, model and access"
                    ) from None
                if kind == "retry" and attempt + 1 < tries:
                    self.stats.retries_transport += 1
                    delay = self._backoff(attempt, err)
                    log.warning(
                        "judge: %s failed (%s); retry %d/%d in %.1f s",
                        what,
                        text,
                        attempt + 1,
                        tries - 1,
                        delay,
                    )
                    self.sleep(delay)
                    continue
                raise TransportError(text, attempt + 1) from None
        raise AssertionError("unreachable")

    # ---------------------------------------------------------------- direct
    def judge_direct(
        self,
        req: JudgeRequest,
        rubric: Rubric,
        *,
        attempts: int = 0,
        raw: str | None = None,
        error: str | None = None,
        tokens: tuple[int, int] = (0, 0),
    ) -> JudgeReply:
        """One item: ask, validate, re-ask a malformed reply; never guess a score."""
        params = self.params(req, rubric)
        tin, tout = tokens

        def invalid(why: str, cacheable: bool = True) -> JudgeReply:
            return JudgeReply(
                key=req.key,
                status="invalid",
                raw=raw,
                error=why,
                attempts=attempts,
                input_tokens=tin,
                output_tokens=tout,
                cacheable=cacheable,
            )

        while attempts < 1 + self.cfg["max_invalid_retries"]:
            if attempts > 0:
                self.stats.retries_invalid += 1
            try:
                msg = self._call("judge request", self.client.messages.create, **params)
            except TransportError as err:
                return invalid(f"API error after {err.tries} tries: {err}", cacheable=False)
            attempts += 1
            i, o = usage_tokens(msg)
            tin, tout = tin + i, tout + o
            self.stats.direct_tokens[0] += i
            self.stats.direct_tokens[1] += o
            scores, raw, error = extract_scores(msg, rubric)
            if scores is not None:
                return scored_reply(
                    req.key,
                    scores,
                    rubric,
                    raw=raw,  # kept in the cache for audit; rows show raw only when invalid
                    attempts=attempts,
                    input_tokens=tin,
                    output_tokens=tout,
                )
            log.warning("judge: invalid reply for %s… (%s)", req.key[:12], error)
        return invalid(f"invalid reply after {attempts} attempt(s): {error}")

    # ---------------------------------------------------------------- entry point
    def judge(
        self,
        requests: list[JudgeRequest],
        rubric: Rubric,
        on_reply: Callable[[JudgeReply], None],
        state_dir: Path,
    ) -> None:
        state_dir = Path(state_dir)
        # A batch submitted by an earlier (killed) run is collected, not paid for twice.
        done = self._resume_batches(requests, rubric, on_reply, state_dir)
        remaining = [r for r in requests if r.key not in done]
        threshold = self.cfg["batch_threshold"]
        if threshold is not None and len(remaining) >= threshold:
            self._judge_in_batches(remaining, rubric, on_reply, state_dir)
            return
        for r in remaining:
            on_reply(self.judge_direct(r, rubric))
