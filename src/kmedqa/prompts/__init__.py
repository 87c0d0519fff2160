"""Turn normalized items into chat messages, as declared in ``prompts/tasks.yaml``.

Training and generation both call :func:`build_messages`, so a model is always
evaluated with the exact prompt it was trained on.
"""

from __future__ import annotations

import random
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

from kmedqa.errors import ConfigError
from kmedqa.io import sha256_text
from kmedqa.items import OPTION_LETTERS, lettered_options

# The prompt format of a dataset whose items carry no ``meta.format`` (scoring, bench).
DATASET_FORMATS = {"aihub71875": "aihub", "kormedmcqa": "kormedmcqa"}
DEFAULT_FORMAT = "instruct"


@cache
def load_tasks() -> dict[str, Any]:
    text = files("kmedqa").joinpath("prompts/tasks.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def get_format(name: str) -> dict[str, Any]:
    formats = load_tasks()["formats"]
    if name not in formats:
        raise ConfigError(f"unknown prompt format {name!r}; declared: {', '.join(sorted(formats))}")
    return formats[name]


def format_name(item: dict[str, Any], formats: dict[str, str] | None = None) -> str:
    """The prompt format of ``item``: ``meta.format`` (set at prepare time), else by dataset."""
    name = (item.get("meta") or {}).get("format") or (formats or {}).get(item["dataset"])
    if name is None:
        raise ConfigError(f"no prompt format for item {item['id']} (dataset {item['dataset']!r})")
    return name


def system_prompt(fmt: dict[str, Any]) -> str | None:
    key = fmt.get("system")
    return None if key is None else load_tasks()["system_prompts"][key]


def render_user(item: dict[str, Any], fmt: dict[str, Any], shots: str = "") -> str:
    opts = item.get("options") or []
    fields = {
        "question": item["question"],
        "options_lettered": lettered_options(opts),
        "options_numbered": "\n".join(f"{i + 1}) {o}" for i, o in enumerate(opts)),
        "shots": shots,
    }
    return fmt["user"].format(**fields)


def target_text(item: dict[str, Any], fmt: dict[str, Any]) -> str:
    """The completion a model is trained to produce for ``item``."""
    if item["task"] == "mcq" and fmt.get("answer_format") == "letter":
        return OPTION_LETTERS[item["answer_index"]]
    return item["answer"]


def build_messages(
    item: dict[str, Any],
    fmt: dict[str, Any],
    shots: list[dict[str, Any]] | None = None,
) -> list[dict[str, str]]:
    """Chat messages for ``item``: system (if any), k solved shots, then the question.

    A format with ``layout: single_prompt`` puts everything in one user message instead:
    its ``user`` template gets the shots, each rendered with its ``shot`` template and
    joined by ``shot_separator``, as ``{shots}`` (study 003's Gemini prompt)."""
    messages: list[dict[str, str]] = []
    sys_text = system_prompt(fmt)
    if sys_text:
        messages.append({"role": "system", "content": sys_text})
    if fmt.get("layout") == "single_prompt":
        shot_texts = [
            fmt["shot"].format(question=s["question"], answer=target_text(s, fmt))
            for s in shots or []
        ]
        text = render_user(item, fmt, shots=fmt.get("shot_separator", "\n\n").join(shot_texts))
        messages.append({"role": "user", "content": text})
        return messages
    for shot in shots or []:
        messages.append({"role": "user", "content": render_user(shot, fmt)})
        messages.append({"role": "assistant", "content": target_text(shot, fmt)})
    messages.append({"role": "user", "content": render_user(item, fmt)})
    return messages


def pick_shots(
    item: dict[str, Any], pool: list[dict[str, Any]], k: int, seed: int
) -> list[dict[str, Any]]:
    """k examples from ``pool`` (the train split), same task as ``item`` where possible.

    Deterministic per (seed, item id), so a resumed or repeated run sees the same shots.
    """
    if k <= 0:
        return []
    same = [p for p in pool if p["task"] == item["task"] and p["id"] != item["id"]]
    cands = same if len(same) >= k else [p for p in pool if p["id"] != item["id"]]
    rng = random.Random(f"{seed}:{item['id']}")
    return rng.sample(cands, min(k, len(cands)))


def max_new_tokens(item: dict[str, Any], fmt: dict[str, Any]) -> int:
    table = fmt.get("max_new_tokens") or {}
    if item["task"] not in table:
        raise ConfigError(f"prompt format has no max_new_tokens for task {item['task']!r}")
    return int(table[item["task"]])


def prompt_sha(text: str) -> str:
    return sha256_text(f"tasks-v{load_tasks()['version']}\n{text}")[:16]
