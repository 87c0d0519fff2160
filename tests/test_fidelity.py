"""Fidelity: every study config against its study's reported settings.

A config value that differs from what the study reports must be a declared deviation;
the test fails on any other difference (and is shown to fail on a constructed one).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

import kmedqa.prompts as prompts
from kmedqa.errors import ConfigError
from kmedqa.paper.fidelity import (
    DECLARED,
    MATCHES,
    NOT_REPORTED,
    STALE,
    UNDECLARED,
    check,
    fidelity_table,
    load_fidelity,
    lookup,
    undeclared,
)

PUBLISHED_001 = (
    "당신은 한국의 필수의료 분야에 특화된 의학 전문 AI 어시스턴트입니다. "
    "임상 근거에 기반하여 정확하고 신뢰할 수 있는 의학 지식을 제공합니다."
)


def load(repo_root: Path, name: str) -> tuple[dict, dict]:
    cfg = yaml.safe_load((repo_root / name).read_text(encoding="utf-8"))
    return cfg, load_fidelity(repo_root / cfg["fidelity"]["file"])


def assert_faithful(cfg: dict, fid: dict) -> None:
    bad = undeclared(check(cfg, fid))
    assert not bad, "undeclared deviations: " + "; ".join(
        f"{r['setting']}: published {r['published']!r}, used {r['used']!r}" for r in bad
    )


CONFIGS = [
    "config.yaml",
    "experiments/essential_medical.yaml",
    "experiments/clinical_notes.yaml",
    "experiments/clinical_notes_demo.yaml",
    "experiments/gemma2_kormedmcqa.yaml",
    "experiments/ko_gemma2_9b.yaml",
    "experiments/ablation_demo.yaml",
    "experiments/essential_medical_open_questions.yaml",
    "experiments/demo_gpu.yaml",
]


def test_every_config_declares_a_study(repo_root):
    on_disk = {f"experiments/{p.name}" for p in (repo_root / "experiments").glob("*.yaml")}
    assert on_disk | {"config.yaml"} == set(CONFIGS)


@pytest.mark.parametrize("name", CONFIGS)
def test_study_config_has_no_undeclared_deviation(repo_root, name):
    cfg, fid = load(repo_root, name)
    assert_faithful(cfg, fid)


def test_an_undeclared_deviation_fails(repo_root):
    cfg, fid = load(repo_root, "experiments/essential_medical.yaml")
    bad = copy.deepcopy(cfg)
    bad["training"]["args"]["learning_rate"] = 1e-4
    bad["training"]["lora"]["target_modules"] = ["q_proj", "v_proj"]
    with pytest.raises(AssertionError, match="learning rate: published 0.0002, used 0.0001"):
        assert_faithful(bad, fid)
    statuses = {r["setting"]: r["status"] for r in check(bad, fid)}
    assert statuses["learning rate"] == UNDECLARED
    assert statuses["LoRA target modules"] == UNDECLARED
    assert statuses["LoRA rank"] == MATCHES
    # the same change, declared by the config, passes and says why
    bad["fidelity"]["deviations"] = {"learning rate": "ablation", "LoRA target modules": "ablation"}
    assert_faithful(bad, fid)
    row = next(r for r in check(bad, fid) if r["setting"] == "learning rate")
    assert (row["status"], row["reason"]) == (DECLARED, "ablation")


def test_a_removed_setting_is_a_deviation(repo_root):
    cfg, fid = load(repo_root, "experiments/clinical_notes.yaml")
    del cfg["training"]["args"]["num_train_epochs"]
    assert [r["setting"] for r in undeclared(check(cfg, fid))] == ["epochs"]


def test_system_prompt_is_compared_as_rendered(repo_root, monkeypatch):
    cfg, fid = load(repo_root, "experiments/essential_medical.yaml")
    row = next(r for r in check(cfg, fid) if r["setting"] == "system prompt")
    assert row["published"] == PUBLISHED_001
    assert row["used"] == prompts.system_prompt(prompts.get_format("aihub"))
    # with the verbatim prompt in tasks.yaml, the declared deviation is reported as stale
    tasks = copy.deepcopy(prompts.load_tasks())
    tasks["system_prompts"][tasks["formats"]["aihub"]["system"]] = PUBLISHED_001
    monkeypatch.setattr(prompts, "load_tasks", lambda: tasks)
    row = next(r for r in check(cfg, fid) if r["setting"] == "system prompt")
    assert row["used"] == PUBLISHED_001 and row["status"] in (STALE, MATCHES)
    # and without a declaration, a different text is an undeclared deviation
    tasks["system_prompts"][tasks["formats"]["aihub"]["system"]] = PUBLISHED_001 + " 추가"
    nodecl = {
        **fid,
        "settings": [{k: v for k, v in s.items() if k != "deviation"} for s in fid["settings"]],
    }
    row = next(r for r in check(cfg, nodecl) if r["setting"] == "system prompt")
    assert row["status"] == UNDECLARED


def test_user_prompt_renders_the_example(repo_root):
    cfg, fid = load(repo_root, "experiments/gemma2_kormedmcqa.yaml")
    row = next(r for r in check(cfg, fid) if r["setting"] == "question format")
    assert row["used"].endswith("\nE. 알칼리인산분해효소(ALP)\n" + row["used"].rsplit("\n", 1)[1])
    assert row["used"].startswith("65세 여자가") and "\nC. 비타민B12(cobalamin)\n" in row["used"]
    assert row["published"].endswith("정답:")


def test_budgets_are_read_from_format_and_override(repo_root):
    cfg, fid = load(repo_root, "config.yaml")
    rows = {r["setting"]: r for r in check(cfg, fid)}
    fmt = prompts.get_format("aihub")
    assert rows["answer budget (MCQ)"]["used"] == fmt["max_new_tokens"]["mcq"]
    assert rows["answer budget (short)"]["used"] == 32  # the demo's override
    assert rows["answer budget (MCQ)"]["status"] == NOT_REPORTED
    cfg["evaluation"]["generation"]["max_new_tokens"]["mcq"] = 512
    assert {r["setting"]: r for r in check(cfg, fid)}["answer budget (MCQ)"]["used"] == 512


def test_study_002_lists_procedure_with_what_kmedqa_lacks(repo_root):
    cfg, fid = load(repo_root, "experiments/ko_gemma2_9b.yaml")
    rows = {r["setting"]: r for r in check(cfg, fid)}
    # CPT and the filters are read from the config now, each a declared deviation
    assert rows["continued pre-training"]["used"]["corpora"]["medical_corpus"]["path"]
    assert rows["continued pre-training"]["status"] == DECLARED
    assert [next(iter(f)) for f in rows["quality filtering"]["used"]] == [
        "length",
        "hangul",
        "near_duplicate",
        "patterns",
    ]
    assert rows["quality filtering"]["status"] == DECLARED
    assert rows["sources merged"]["used"] == ["medexpqa_ko", "ultramed", "cod", "asan_disease"]
    assert rows["KorMedMCQA in training"]["used"] == ["merged", "kmm_doctor_train"]
    assert rows["fine-tuning"]["status"] == MATCHES


def test_lookup_paths_and_bad_declarations(repo_root, tmp_path):
    cfg, fid = load(repo_root, "experiments/clinical_notes.yaml")
    assert lookup(cfg, "models/qwen3-4b/id") == "Qwen/Qwen3-4B"
    assert len(lookup(cfg, "models/*/id")) == 4  # three small models and Gemini 2.5 Flash
    assert lookup(cfg, "training/args/nope") == "not set"
    cfg["fidelity"]["deviations"] = {"no such setting": "x"}
    with pytest.raises(ConfigError, match="fidelity.deviations: unknown setting 'no such setting'"):
        check(cfg, fid)
    with pytest.raises(ConfigError, match="does not exist"):
        load_fidelity(tmp_path / "missing.yaml")
    (tmp_path / "f.yaml").write_text("settings: [{setting: x, path: seed}]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"settings\[0\] lacks published, source"):
        load_fidelity(tmp_path / "f.yaml")


def test_table_has_one_section_per_config(repo_root):
    sections = []
    for name in ("config.yaml", "experiments/essential_medical.yaml"):
        cfg, fid = load(repo_root, name)
        sections.append((cfg["study"], fid["study"], check(cfg, fid)))
    t = fidelity_table(sections)
    md = t.markdown()
    assert md.count("| demo | ") == len(sections[0][2])
    assert "| essential-medical-qwen2.5-7b | LoRA rank | 16 | 16 | Table 1 | matches | – |" in md
    assert len(t.notes) == 2 and "undeclared" not in t.notes[1]
    tex = t.latex()
    assert (
        "\\begin{longtable}" in tex
        and "\\endhead" in tex
        and tex.count("\\label{tab:fidelity}") == 1
    )


def test_an_eval_set_format_overrides_the_dataset_format(repo_root):
    cfg, fid = load(repo_root, "experiments/gemma2_kormedmcqa.yaml")
    rows = {r["setting"]: r for r in check(cfg, fid)}
    assert rows["evaluation"]["used"] == "kormedmcqa_lmeval"  # lm-eval 0.4.13 kormedmcqa v3
    cfg["evaluation"]["eval_sets"]["kmm-doctor-test"]["format"] = "instruct"
    rows = {r["setting"]: r for r in check(cfg, fid)}
    assert rows["evaluation"]["used"] == "instruct"
    assert rows["evaluation"]["status"] == UNDECLARED
    assert rows["answer budget"]["used"] == cfg["evaluation"]["generation"].get(
        "max_new_tokens", {}
    ).get("mcq", prompts.get_format("instruct")["max_new_tokens"].get("mcq", "not set"))
