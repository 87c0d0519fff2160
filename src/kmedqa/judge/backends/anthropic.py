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
Batches API: one request per item with ``custom_id`` = the cache key, polled with
backoff until ``processing_status == "ended"``, results matched by ``custom_id`` (they
come out of order). The batch id is saved under ``<cache_dir>/_state/`` first, so a
killed job resumes polling the same batch instead of paying twice. Decision for a
request that came back ``errored``, ``expired`` or ``canceled`` (or not at all): it is
re-asked by a direct call, with the same retry rules as any direct call; a batch reply
that is malformed counts as the first attempt and is re-asked directly as well. Batch
tokens are costed at the batch discount.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kmedqa.errors import ConfigError, KmedqaError
from kmedqa.io import atomic_write_text, read_json
from kmedqa.judge.base import (
    API_KEY_ENV,
    BackendStats,
    JudgeReply,
    JudgeRequest,
    resolve_config,
    scrub,
)
from kmedqa.judge.rubric import Rubric

log = logging.getLogger("kmedqa.judge")

MAX_BATCH_REQUESTS = (
    10_000  # per submitted batch (the API allows more; smaller is kinder to resume)
)


class _TransportError(Exception):
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


def _retry_after(err: BaseException) -> float | None:
    resp = getattr(err, "response", None)
    if resp is None:
        return None
    value = resp.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


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


class AnthropicBackend:
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
    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        from kmedqa.generation.backends.base import backoff_delay  # shared with generation

        b = self.cfg["backoff"]
        return backoff_delay(attempt, b["base_s"], b["max_s"], self.rng, retry_after)

    def _classify(self, err: BaseException) -> str:
        import anthropic

        if isinstance(err, anthropic.APIStatusError):
            code = err.status_code
            if code in (408, 409, 429) or code >= 500:
                return "retry"
            if code in (401, 403, 404):
                return "fatal"
            return "fail"
        if isinstance(err, anthropic.APIConnectionError):  # timeouts included
            return "retry"
        if isinstance(err, anthropic.AnthropicError):
            return "fail"
        return "other"

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
                kind = self._classify(err)
                if kind == "other":
                    raise
                text = describe_error(err)
                if kind == "fatal":
                    raise KmedqaError(
                        f"Anthropic API refused the {what} ({text}); check the key, model and access"
                    ) from None
                if kind == "retry" and attempt + 1 < tries:
                    self.stats.retries_transport += 1
                    delay = self._backoff(attempt, _retry_after(err))
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
                raise _TransportError(text, attempt + 1) from None
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
            except _TransportError as err:
                return invalid(f"API error after {err.tries} tries: {err}", cacheable=False)
            attempts += 1
            usage = getattr(msg, "usage", None)
            i, o = (
                int(getattr(usage, "input_tokens", 0) or 0),
                int(getattr(usage, "output_tokens", 0) or 0),
            )
            tin, tout = tin + i, tout + o
            self.stats.direct_tokens[0] += i
            self.stats.direct_tokens[1] += o
            scores, raw, error = extract_scores(msg, rubric)
            if scores is not None:
                return JudgeReply(
                    key=req.key,
                    status="ok",
                    scores={k: scores[k] for k in rubric.keys},
                    rationale=scores.get("rationale"),
                    raw=raw,  # kept in the cache for audit; rows show raw only when invalid
                    attempts=attempts,
                    input_tokens=tin,
                    output_tokens=tout,
                )
            log.warning("judge: invalid reply for %s… (%s)", req.key[:12], error)
        return invalid(f"invalid reply after {attempts} attempt(s): {error}")

    # ---------------------------------------------------------------- batch
    def _submit_batch(self, reqs: list[JudgeRequest], rubric: Rubric, state_dir: Path) -> Path:
        body = [{"custom_id": r.key, "params": self.params(r, rubric)} for r in reqs]
        batch = self._call(
            "batch submission", self.client.messages.batches.create, batch=True, requests=body
        )
        self.stats.batches.append(batch.id)
        ids = [r.key for r in reqs]
        tag = hashlib.sha256("\n".join([self.model, *ids]).encode()).hexdigest()[:16]
        state = state_dir / f"batch-{tag}.json"
        atomic_write_text(
            state,
            json.dumps(
                {
                    "batch_id": batch.id,
                    "model": self.model,
                    "custom_ids": ids,
                    "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                },
                indent=1,
            ),
        )
        log.info("judge: submitted batch %s with %d requests", batch.id, len(reqs))
        return state

    def _wait(self, batch_id: str) -> Any:
        poll = self.cfg["batch_poll"]
        delay, waited = float(poll["initial_s"]), 0.0
        while True:
            b = self._call(
                "batch status",
                self.client.messages.batches.retrieve,
                batch=True,
                message_batch_id=batch_id,
            )
            if b.processing_status == "ended":
                return b
            if waited >= float(poll["timeout_s"]):
                raise KmedqaError(
                    f"judge batch {batch_id} has not ended after {waited:.0f} s of polling; "
                    "rerun to resume it (its id is kept in the judge cache)"
                )
            log.info(
                "judge: batch %s is %s; next poll in %.0f s", batch_id, b.processing_status, delay
            )
            self.sleep(delay)
            waited += delay
            delay = min(float(poll["max_s"]), delay * float(poll["factor"]))

    def _collect(
        self,
        state: Path,
        reqs: dict[str, JudgeRequest],
        rubric: Rubric,
        on_reply: Callable[[JudgeReply], None],
    ) -> set[str]:
        """Wait for a batch, hand over its replies; re-ask the failed ones directly."""
        info = read_json(state)
        batch_id = info["batch_id"]
        wanted = [k for k in info["custom_ids"] if k in reqs]
        self._wait(batch_id)
        results = self._call(
            "batch results",
            lambda: list(self.client.messages.batches.results(batch_id)),
            batch=True,
        )
        seen: set[str] = set()
        fallback: list[tuple[JudgeRequest, dict[str, Any]]] = []
        for r in results:
            cid = r.custom_id
            if cid not in reqs or cid in seen:
                continue
            seen.add(cid)
            res = r.result
            if res.type == "succeeded":
                msg = res.message
                usage = getattr(msg, "usage", None)
                i, o = (
                    int(getattr(usage, "input_tokens", 0) or 0),
                    int(getattr(usage, "output_tokens", 0) or 0),
                )
                self.stats.batch_tokens[0] += i
                self.stats.batch_tokens[1] += o
                scores, raw, error = extract_scores(msg, rubric)
                if scores is not None:
                    on_reply(
                        JudgeReply(
                            key=cid,
                            status="ok",
                            scores={k: scores[k] for k in rubric.keys},
                            rationale=scores.get("rationale"),
                            raw=raw,
                            attempts=1,
                            input_tokens=i,
                            output_tokens=o,
                            via="batch",
                        )
                    )
                else:
                    log.warning(
                        "judge: invalid batch reply for %s… (%s); asking directly", cid[:12], error
                    )
                    fallback.append(
                        (reqs[cid], {"attempts": 1, "raw": raw, "error": error, "tokens": (i, o)})
                    )
            else:
                why = res.type
                err = getattr(getattr(res, "error", None), "error", None)
                if err is not None:
                    why = f"{why}: {getattr(err, 'type', '')} {getattr(err, 'message', '')}".strip()
                log.warning("judge: batch request %s… %s; asking directly", cid[:12], scrub(why))
                fallback.append((reqs[cid], {}))
        for cid in wanted:
            if cid not in seen:
                log.warning(
                    "judge: batch %s returned no result for %s…; asking directly",
                    batch_id,
                    cid[:12],
                )
                fallback.append((reqs[cid], {}))
        self.stats.batch_fallbacks += len(fallback)
        for req, prior in fallback:
            on_reply(self.judge_direct(req, rubric, **prior))
        state.unlink(missing_ok=True)
        return set(wanted)

    # ---------------------------------------------------------------- entry point
    def judge(
        self,
        requests: list[JudgeRequest],
        rubric: Rubric,
        on_reply: Callable[[JudgeReply], None],
        state_dir: Path,
    ) -> None:
        reqs = {r.key: r for r in requests}
        done: set[str] = set()
        state_dir = Path(state_dir)
        # A batch submitted by an earlier (killed) run is collected, not paid for twice.
        for state in sorted(state_dir.glob("batch-*.json")):
            try:
                info = read_json(state)
            except KmedqaError:
                continue
            if info.get("model") != self.model:
                continue
            if not set(info.get("custom_ids", [])) & set(reqs):  # all of it is cached already
                state.unlink(missing_ok=True)
                continue
            log.info("judge: resuming batch %s", info.get("batch_id"))
            try:
                done |= self._collect(state, reqs, rubric, on_reply)
            except _TransportError as err:
                raise KmedqaError(
                    f"judge batch: {err} (after {err.tries} tries); rerun to resume"
                ) from None
        remaining = [r for r in requests if r.key not in done]
        threshold = self.cfg["batch_threshold"]
        if threshold is not None and len(remaining) >= threshold:
            for start in range(0, len(remaining), MAX_BATCH_REQUESTS):
                chunk = remaining[start : start + MAX_BATCH_REQUESTS]
                try:
                    state = self._submit_batch(chunk, rubric, state_dir)
                    self._collect(state, {r.key: r for r in chunk}, rubric, on_reply)
                except _TransportError as err:
                    raise KmedqaError(
                        f"judge batch: {err} (after {err.tries} tries); rerun to resume"
                    ) from None
            return
        for r in remaining:
            on_reply(self.judge_direct(r, rubric))
