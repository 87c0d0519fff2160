"""Prompt formats are declared data; training and generation render the same messages."""

from __future__ import annotations

import pytest

from kmedqa import prompts
from kmedqa.errors import ConfigError

KMM = {
    "id": "k1",
    "dataset": "kormedmcqa",
    "task": "mcq",
    "domain": "doctor",
    "q_type": "객관식",
    "question": "가장 적절한 치료는?",
    "options": ["가", "나", "다", "라", "마"],
    "answer": "C. 다",
    "answer_index": 2,
    "meta": {"format": "kormedmcqa"},
}


def test_kormedmcqa_prompt_is_lm_eval_style():
    fmt = prompts.get_format("kormedmcqa")
    msgs = prompts.build_messages(KMM, fmt)
    assert msgs == [
        {
            "role": "user",
            "content": "가장 적절한 치료는?\nA. 가\nB. 나\nC. 다\nD. 라\nE. 마\n정답：",
        }
    ]
    assert prompts.target_text(KMM, fmt) == "C"
    assert prompts.max_new_tokens(KMM, fmt) == 8


def test_aihub_prompt_has_the_study_system_prompt_and_raw_answer():
    item = {**KMM, "dataset": "aihub71875", "answer": "3) 다", "meta": {}}
    fmt = prompts.get_format(prompts.format_name(item, {"aihub71875": "aihub"}))
    msgs = prompts.build_messages(item, fmt)
    assert msgs[0]["role"] == "system" and "필수의료" in msgs[0]["content"]
    assert prompts.target_text(item, fmt) == "3) 다"


def test_shots_are_deterministic_and_exclude_the_item():
    pool = [{**KMM, "id": f"p{i}"} for i in range(10)] + [KMM]
    a = prompts.pick_shots(KMM, pool, 3, seed=1)
    assert [s["id"] for s in a] == [s["id"] for s in prompts.pick_shots(KMM, pool, 3, seed=1)]
    assert KMM["id"] not in [s["id"] for s in a] and len(a) == 3
    msgs = prompts.build_messages(KMM, prompts.get_format("kormedmcqa"), a)
    assert [m["role"] for m in msgs] == ["user", "assistant"] * 3 + ["user"]


def test_unknown_format_and_missing_budget_are_named():
    with pytest.raises(ConfigError, match="nope"):
        prompts.get_format("nope")
    with pytest.raises(ConfigError, match="descriptive"):
        prompts.max_new_tokens({**KMM, "task": "descriptive"}, prompts.get_format("kormedmcqa"))
    with pytest.raises(ConfigError, match="k1"):
        prompts.format_name({**KMM, "meta": {}}, {})


def test_prompt_sha_depends_on_text():
    assert prompts.prompt_sha("a") != prompts.prompt_sha("b") and len(prompts.prompt_sha("a")) == 16
