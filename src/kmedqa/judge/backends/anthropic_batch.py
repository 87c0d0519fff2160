"""The judge's Message Batches API path (:class:`BatchJudging`, a part of
:class:`~kmedqa.judge.backends.anthropic.AnthropicBackend`).

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

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kmedqa.errors import KmedqaError
from kmedqa.io import atomic_write_text, read_json
from kmedqa.judge.backends.anthropic_sdk import TransportError, extract_scores, usage_tokens
from kmedqa.judge.base import JudgeReply, JudgeRequest, scored_reply, scrub
from kmedqa.judge.rubric import Rubric

log = logging.getLogger("kmedqa.judge")

MAX_BATCH_REQUESTS = (
    10_000  # per submitted batch (the API allows more; smaller is kinder to resume)
)


@contextlib.contextmanager
def _stop_on_transport_error() -> Iterator[None]:
    """A batch call out of retries stops the run; its state file lets a rerun resume."""
    try:
        yield
    except TransportError as err:
        raise KmedqaError(
            f"judge batch: {err} (after {err.tries} tries); rerun to resume"
        ) from None


class BatchJudging:
    """Batch submission, polling and collection; the backend supplies ``params``, ``_call``,
    ``judge_direct``, ``client``, ``cfg``, ``model``, ``stats`` and ``sleep``."""

    def _resume_batches(
        self,
        requests: list[JudgeRequest],
        rubric: Rubric,
        on_reply: Callable[[JudgeReply], None],
        state_dir: Path,
    ) -> set[str]:
        """Collect the batches an earlier run submitted for these requests; their keys."""
        reqs = {r.key: r for r in requests}
        done: set[str] = set()
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
            with _stop_on_transport_error():
                done |= self._collect(state, reqs, rubric, on_reply)
        return done

    def _judge_in_batches(
        self,
        remaining: list[JudgeRequest],
        rubric: Rubric,
        on_reply: Callable[[JudgeReply], None],
        state_dir: Path,
    ) -> None:
        for start in range(0, len(remaining), MAX_BATCH_REQUESTS):
            chunk = remaining[start : start + MAX_BATCH_REQUESTS]
            with _stop_on_transport_error():
                state = self._submit_batch(chunk, rubric, state_dir)
                self._collect(state, {r.key: r for r in chunk}, rubric, on_reply)

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
                i, o = usage_tokens(msg)
                self.stats.batch_tokens[0] += i
                self.stats.batch_tokens[1] += o
                scores, raw, error = extract_scores(msg, rubric)
                if scores is not None:
                    on_reply(
                        scored_reply(
                            cid,
                            scores,
                            rubric,
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
