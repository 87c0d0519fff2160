"""The judge's base layer: request/reply types, the backend protocol, the config with its
defaults, privacy (scrub, the external gate) and the cost estimate.

Backends (:mod:`kmedqa.judge.backends`) import this module (and the rubric and cache);
the orchestrator :mod:`kmedqa.judge.run` sits on top of both. Nothing here imports a
backend or the orchestrator.

Privacy rules kept here: medical items leave the machine only when
``judge.allow_external`` is true and the key is in ``ANTHROPIC_API_KEY``; the key is
never written anywhere, every recorded error is scrubbed of it.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol

import yaml

from kmedqa.errors import ConfigError
from kmedqa.judge.rubric import DEFAULT_RUBRIC, Rubric

API_KEY_ENV = "ANTHROPIC_API_KEY"
BACKENDS = ("anthropic", "local", "none")
STATUSES = ("ok", "invalid", "not_run")
ROW_FIELDS = (
    "id",
    "run",
    "judge_backend",
    "judge_model",
    "rubric_id",
    "rubric_version",
    "status",
    "accuracy",
    "completeness",
    "relevance",
    "rationale",
    "raw",
    "error",
)

# Everything the judge reads from the config's ``judge:`` section, with its default.
DEFAULTS: dict[str, Any] = {
    "backend": "anthropic",  # anthropic | local | none (no judge: every row "not_run")
    "model": None,  # anthropic: DEFAULT_ANTHROPIC_MODEL; local: a path or hub id (required)
    "rubric": DEFAULT_RUBRIC,  # packaged rubric name or a YAML path
    "allow_external": False,  # must be true before any item is sent to an external API
    "sample": {
        "n": 30,
        "tasks": ["short", "descriptive"],
        "seed": 42,
        "strata": ["q_type", "domain"],
    },
    "max_invalid_retries": 2,  # re-asks after a malformed / out-of-range reply
    "max_api_retries": 5,  # retries after 408/409/429/5xx/timeouts/connection errors
    "backoff": {"base_s": 1.0, "max_s": 60.0},  # exponential, with jitter
    "timeout_s": 120.0,  # per HTTP request
    "max_tokens": 1024,
    "tool_choice": "tool",  # "tool" forces record_scores; "auto" for models that reject forcing
    "extra_params": {},  # merged into messages.create (e.g. {"thinking": {"type": "disabled"}})
    "base_url": None,  # None: the SDK default (or ANTHROPIC_BASE_URL)
    "batch_threshold": 100,  # >= this many uncached requests go through the Batches API; null: never
    "batch_poll": {"initial_s": 30.0, "max_s": 300.0, "factor": 1.5, "timeout_s": 90000.0},
    "prices": {},  # {model: {input: USD/MTok, output: USD/MTok}} overriding judge/prices.yaml
    "prices_as_of": None,
    "local": {"max_new_tokens": 96, "device": "cpu", "dtype": None},
}
DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-4-6"
FORBIDDEN_PARAMS = ("temperature", "top_p", "top_k")


# --------------------------------------------------------------------------- config


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if (
            isinstance(v, dict)
            and isinstance(out.get(k), dict)
            and k not in ("prices", "extra_params")
        ):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def resolve_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """The judge config with defaults filled in; a bad value raises ConfigError naming its key.

    Accepts either the ``judge:`` section itself or a whole config that has one.
    """
    config = dict(config or {})
    if isinstance(config.get("judge"), dict):
        config = config["judge"]
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ConfigError(
            f"judge: unknown key(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}"
        )
    cfg = _merge(DEFAULTS, config)
    if cfg["backend"] not in BACKENDS:
        raise ConfigError(f"judge.backend: {cfg['backend']!r} is not one of {', '.join(BACKENDS)}")
    if cfg["model"] is None:
        if cfg["backend"] == "local":
            raise ConfigError("judge.model: the local backend needs a model path or hub id")
        if cfg["backend"] == "anthropic":
            cfg["model"] = DEFAULT_ANTHROPIC_MODEL
    if cfg["backend"] != "none" and (not isinstance(cfg["model"], str) or not cfg["model"]):
        raise ConfigError("judge.model: must be a non-empty string")
    if not isinstance(cfg["allow_external"], bool):
        raise ConfigError("judge.allow_external: must be true or false")
    for k in ("max_invalid_retries", "max_api_retries", "max_tokens"):
        if not isinstance(cfg[k], int) or isinstance(cfg[k], bool) or cfg[k] < 0:
            raise ConfigError(f"judge.{k}: must be a non-negative integer")
    if cfg["max_tokens"] < 1:
        raise ConfigError("judge.max_tokens: must be >= 1")
    bt = cfg["batch_threshold"]
    if bt is not None and (not isinstance(bt, int) or isinstance(bt, bool) or bt < 1):
        raise ConfigError("judge.batch_threshold: must be a positive integer or null")
    if cfg["tool_choice"] not in ("tool", "auto"):
        raise ConfigError("judge.tool_choice: must be 'tool' (forced) or 'auto'")
    if not isinstance(cfg["extra_params"], dict):
        raise ConfigError("judge.extra_params: must be a mapping")
    bad = [p for p in FORBIDDEN_PARAMS if p in cfg["extra_params"]]
    if bad:
        raise ConfigError(
            f"judge.extra_params: {', '.join(bad)} is not sent (current Claude models reject "
            "sampling parameters); remove it"
        )
    reserved = {"model", "messages", "system", "tools", "tool_choice", "max_tokens"}
    clash = sorted(reserved & set(cfg["extra_params"]))
    if clash:
        raise ConfigError(f"judge.extra_params: {', '.join(clash)} is set by the judge itself")
    _check_sample(cfg["sample"])
    for k in ("timeout_s",):
        if not isinstance(cfg[k], int | float) or cfg[k] <= 0:
            raise ConfigError(f"judge.{k}: must be a positive number")
    for sect, keys in (
        ("backoff", ("base_s", "max_s")),
        ("batch_poll", ("initial_s", "max_s", "factor", "timeout_s")),
    ):
        for k in keys:
            v = cfg[sect].get(k)
            if not isinstance(v, int | float) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"judge.{sect}.{k}: must be a non-negative number")
    return cfg


def _check_sample(sample: Any) -> None:
    if sample == "all":
        return
    if not isinstance(sample, dict):
        raise ConfigError("judge.sample: must be 'all' or a mapping {n, tasks, seed, strata}")
    unknown = set(sample) - {"n", "tasks", "seed", "strata"}
    if unknown:
        raise ConfigError(f"judge.sample: unknown key(s) {', '.join(sorted(unknown))}")
    n = sample.get("n")
    if n is not None and n != "all" and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ConfigError("judge.sample.n: must be a positive integer, 'all' or null")
    tasks = sample.get("tasks")
    if tasks is not None and not (
        isinstance(tasks, list) and all(isinstance(t, str) for t in tasks)
    ):
        raise ConfigError("judge.sample.tasks: must be a list of task names")
    if not isinstance(sample.get("seed", 0), int):
        raise ConfigError("judge.sample.seed: must be an integer")
    strata = sample.get("strata", [])
    if not (isinstance(strata, list) and all(isinstance(s, str) for s in strata)):
        raise ConfigError("judge.sample.strata: must be a list of item fields")


# --------------------------------------------------------------------------- privacy

_KEY_PATTERN = re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}")


def secrets_from_env() -> list[str]:
    key = os.environ.get(API_KEY_ENV)
    return [key] if key else []


def scrub(text: Any, secrets: Iterable[str] | None = None) -> Any:
    """``text`` with every secret (default: the API key from the environment) redacted."""
    if text is None:
        return None
    text = str(text)
    for s in list(secrets or []) + secrets_from_env():
        if s and len(s) >= 4:
            text = text.replace(s, "[REDACTED]")
    return _KEY_PATTERN.sub("[REDACTED]", text)


def external_gate(cfg: dict[str, Any], external: bool) -> str | None:
    """Why the judge must not run (``None`` when it may)."""
    if not external:
        return None
    if not cfg["allow_external"]:
        return (
            "judge.allow_external is false: medical items are not sent to an external API "
            "(set judge.allow_external: true to allow it, or use the local backend)"
        )
    if not os.environ.get(API_KEY_ENV):
        return f"{API_KEY_ENV} is not set"
    return None


# --------------------------------------------------------------------------- sample


@dataclass
class JudgeRequest:
    key: str
    system: str
    user: str


@dataclass
class JudgeReply:
    key: str
    status: str  # "ok" | "invalid"
    scores: dict[str, int] | None = None
    rationale: str | None = None
    raw: str | None = None
    error: str | None = None
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    via: str = "direct"  # "direct" | "batch" | "local"
    cacheable: bool = True  # False for transport failures: not a reply, ask again next time


def scored_reply(key: str, scores: dict[str, Any], rubric: Rubric, **kw: Any) -> JudgeReply:
    """An ``ok`` reply: the rubric's scores (and the rationale) out of a validated reply."""
    return JudgeReply(
        key=key,
        status="ok",
        scores={k: scores[k] for k in rubric.keys},
        rationale=scores.get("rationale"),
        **kw,
    )


@dataclass
class BackendStats:
    calls: int = 0  # judge requests (messages.create / generate()), retries included
    batch_api_calls: int = 0  # batch create / status polls / results downloads
    direct_tokens: list[int] = field(default_factory=lambda: [0, 0])  # input, output
    batch_tokens: list[int] = field(default_factory=lambda: [0, 0])
    batches: list[str] = field(default_factory=list)
    retries_transport: int = 0
    retries_invalid: int = 0
    batch_fallbacks: int = 0  # batch requests errored/expired/invalid and re-asked directly


class JudgeBackend(Protocol):
    name: str
    model: str
    external: bool
    stats: BackendStats

    def prompt(
        self, rubric: Rubric, question: str, reference: str, answer: str
    ) -> JudgeRequest: ...

    def judge(
        self,
        requests: list[JudgeRequest],
        rubric: Rubric,
        on_reply: Callable[[JudgeReply], None],
        state_dir: Path,
    ) -> None: ...


# --------------------------------------------------------------------------- cost


@cache
def default_prices() -> dict[str, Any]:
    return yaml.safe_load(files("kmedqa").joinpath("judge/prices.yaml").read_text(encoding="utf-8"))


def cost_estimate(
    cfg: dict[str, Any], backend: str, model: str, stats: BackendStats
) -> dict[str, Any]:
    """USD estimate of this run's judge calls, clearly labelled as an estimate with its date."""
    tokens = {
        "input": stats.direct_tokens[0] + stats.batch_tokens[0],
        "output": stats.direct_tokens[1] + stats.batch_tokens[1],
    }
    if backend != "anthropic":
        return {"label": "estimate", "usd": 0.0, "note": "local model: no per-token charge"}
    table = default_prices()
    prices = dict(table.get("models") or {})
    prices.update(cfg.get("prices") or {})
    as_of = cfg.get("prices_as_of") if cfg.get("prices") else table.get("as_of")
    out: dict[str, Any] = {
        "label": "estimate",
        "currency": table.get("currency", "USD"),
        "prices_as_of": as_of or table.get("as_of"),
        "source": "config judge.prices"
        if model in (cfg.get("prices") or {})
        else table.get("source"),
        "note": "estimate from list prices per million tokens; the invoice is authoritative",
    }
    p = prices.get(model)
    if not p:
        out.update(usd=None, note=f"no price on file for model {model!r}; add judge.prices")
        return out
    disc = float(table.get("batch_discount", 0.5))
    usd = (stats.direct_tokens[0] * p["input"] + stats.direct_tokens[1] * p["output"]) / 1e6
    usd += disc * (stats.batch_tokens[0] * p["input"] + stats.batch_tokens[1] * p["output"]) / 1e6
    out.update(
        usd=round(usd, 6),
        input_per_mtok=p["input"],
        output_per_mtok=p["output"],
        batch_discount=disc,
        tokens=tokens,
    )
    return out


# --------------------------------------------------------------------------- run
