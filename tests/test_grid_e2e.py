"""A grid x seeds on the tiny model, raw data to the ablation table (a few minutes)."""

from __future__ import annotations

import json

import pytest
import yaml
from helpers.workflow import run_snakemake

pytestmark = pytest.mark.slow

TARGETS = (
    "paper/tables/ablation_bal.md",
    "paper/figures/ablation_bal.png",
    "paper/figures/ablation_balance.png",
    "paper/tables/significance.md",
)


def grid_config(repo_root, model_dir):
    cfg = yaml.safe_load((repo_root / "config.yaml").read_text(encoding="utf-8"))
    cfg["study"] = "grid-e2e"
    cfg["models"] = {"tiny": {"source": "local", "id": str(model_dir), "chat_template": "gemma"}}
    cfg["datasets"]["aihub_demo"]["sample"] = {"per": "q_type", "n": 3, "seed": 1}
    del cfg["datasets"]["kormedmcqa_demo"]
    cfg["evaluation"]["eval_sets"] = {
        "aihub_demo-sample": {"dataset": "aihub_demo", "split": "sample"}
    }
    cfg["training"]["lora"]["r"] = 4
    cfg["training"]["args"].update(max_steps=2, eval_steps=2, save_steps=2, logging_steps=1)
    cfg["aliases"] = {"natural": None, "weighted": {"method": "weight"}}
    cfg["grids"] = {"bal": {"balance": ["natural", "weighted"]}}
    cfg["seeds"] = [42, 43]
    cfg["runs"] = {"tiny": ["base", "ft-aihub_demo+bal"]}
    cfg["compare"] = {"metrics": ["mcq_strict"], "resamples": 200}
    cfg["judge"] = {"backend": "none"}
    for key in ("published", "fidelity"):
        cfg.pop(key)
    return cfg


def test_grid_and_seeds_fan_out_to_adapters_scores_and_tables(repo_root, tiny_model_dir, tmp_path):
    cfg = grid_config(repo_root, tiny_model_dir)
    proc = run_snakemake(
        repo_root, tmp_path, cfg, *TARGETS, "--cores", "2", "--resources", "gpu=1", timeout=1200
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    runs = [
        "ft-aihub_demo",
        "ft-aihub_demo@s43",
        "ft-aihub_demo+weighted",
        "ft-aihub_demo+weighted@s43",
    ]
    seeds = {}
    for v in runs:
        s = json.loads((tmp_path / f"results/train/tiny/{v[3:]}/summary.json").read_text())
        seeds[v] = s["seed"]
        assert ("balance" in s) == ("weighted" in v)
        assert (tmp_path / f"results/scores/tiny/{v}/aihub_demo-sample.jsonl").exists()
    assert seeds == dict(zip(runs, [42, 43, 42, 43], strict=True))
    w = json.loads((tmp_path / "results/train/tiny/aihub_demo+weighted/summary.json").read_text())
    assert w["balance"]["method"] == "weight" and sum(
        w["balance"]["effective_counts"].values()
    ) == pytest.approx(w["n_train"])
    # different seeds train different adapters
    a = (tmp_path / "results/train/tiny/aihub_demo/adapter/adapter_model.safetensors").read_bytes()
    b = (
        tmp_path / "results/train/tiny/aihub_demo@s43/adapter/adapter_model.safetensors"
    ).read_bytes()
    assert a != b
    report = json.loads((tmp_path / "results/stats/seeds/aihub_demo-sample.json").read_text())
    groups = {g["run"]: g for g in report["groups"]}
    assert groups["tiny:ft-aihub_demo"]["seeds"] == [42, 43]
    assert len(groups["tiny:ft-aihub_demo+weighted"]["per_seed"]) == 2
    pairs = {(c["run_a"], c["run_b"]) for c in report["comparisons"]}
    assert ("tiny:base", "tiny:ft-aihub_demo") in pairs
    assert ("tiny:ft-aihub_demo", "tiny:ft-aihub_demo+weighted") in pairs
    table = (tmp_path / "paper/tables/ablation_bal.md").read_text()
    assert "natural ★" in table and "weighted" in table
    assert "seeds+items" in (tmp_path / "paper/tables/significance.md").read_text()
    for fig in ("ablation_bal", "ablation_balance"):
        assert (tmp_path / f"paper/figures/{fig}.png").stat().st_size > 1000
