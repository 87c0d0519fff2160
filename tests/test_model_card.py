"""Model cards of trained adapters: the Hub's own parser accepts them, and the numbers are right."""

from __future__ import annotations

import pytest
from huggingface_hub import ModelCard

from kmedqa.hub.card import card_data, metric_results, write_card

SPEC = {"source": "hub", "id": "Qwen/Qwen2.5-7B-Instruct"}
SUMMARY = {
    "quantization": "nf4",
    "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]},
    "args": {"learning_rate": 2e-4},
    "n_train": 10,
    "global_steps": 5,
    "seed": 42,
    "final_val_loss": 1.25,
}


def rows(values, column="mcq_strict"):
    return [{"id": f"q{i}", column: v} for i, v in enumerate(values)]


def test_metric_results_mean_n_and_interval():
    res = metric_results(rows([1, 0, 1, 1]), n_resamples=2000, seed=1)
    (m,) = res
    assert m["column"] == "mcq_strict" and m["n"] == 4 and m["value"] == pytest.approx(0.75)
    lo, hi = m["ci95"]
    assert 0.0 <= lo <= 0.75 <= hi <= 1.0 and lo < hi


def test_metric_results_skip_absent_and_null_columns():
    r = rows([0.5, None], column="rougeL_ko") + [{"id": "x"}]
    (m,) = metric_results(r, n_resamples=200, seed=0)
    assert m["column"] == "rougeL_ko" and m["n"] == 1


def test_card_parses_with_the_hub_parser(tmp_path):
    results = {
        "kmm-test": metric_results(rows([1, 0, 1, 1, 0]), n_resamples=500, seed=0),
        "empty-set": [],
    }
    text = write_card(
        tmp_path,
        model="qwen2.5-7b",
        train_set="aihub",
        model_spec=SPEC,
        train_summary=SUMMARY,
        results=results,
        datasets=["aihub"],
        hub={"license": "apache-2.0", "language": ["ko", "en"]},
        study="essential-medical",
        configfile="experiments/essential_medical.yaml",
    )
    card = ModelCard.load(tmp_path / "README.md")
    data = card.data
    assert data.base_model == "Qwen/Qwen2.5-7B-Instruct"
    assert data.library_name == "peft" and data.pipeline_tag == "text-generation"
    assert data.license == "apache-2.0" and data.language == ["ko", "en"]
    assert "qlora" in data.tags and data.datasets == ["aihub"]
    (res,) = data.eval_results  # the eval set without results is left out
    assert res.dataset_name == "kmm-test" and res.metric_type == "accuracy"
    assert res.metric_value == pytest.approx(0.6)
    assert res.metric_args["n"] == 5 and len(res.metric_args["ci95"]) == 2
    assert "--configfile experiments/essential_medical.yaml results/hub/qwen2.5-7b/aihub" in text
    assert "| kmm-test | mcq_strict | 5 | 0.6000 |" in card.text


def test_no_base_model_for_a_local_model_without_one():
    data = card_data(
        model="m",
        train_set="t",
        model_spec={"source": "local", "id": "/models/x"},
        train_summary={"quantization": "none"},
        results={},
        datasets=["t"],
        hub={},
    )
    assert "base_model" not in data and data["license"] == "other" and "qlora" not in data["tags"]
