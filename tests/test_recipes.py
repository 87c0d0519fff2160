"""Recipes, grids and seeds: expansion, names, validation, and "nothing changes without them"."""

from __future__ import annotations

import copy

import pytest
import yaml
from helpers.workflow import run_snakemake

from kmedqa.errors import ConfigError
from kmedqa.recipes import parse_variant, plan, seed_for, seed_groups, training_for
from kmedqa.workflow import validate_config

ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]
ALL7 = [*ATTN, "gate_proj", "up_proj", "down_proj"]


@pytest.fixture
def cfg(repo_root):
    c = yaml.safe_load((repo_root / "config.yaml").read_text(encoding="utf-8"))
    c["runs"] = {"gemma3-270m": ["base", "ft-aihub_demo"]}
    return c


def validated(c, repo_root):
    c = copy.deepcopy(c)
    validate_config(c, str(repo_root / "schemas" / "config.schema.yaml"))
    return c


def test_names_parse_and_round_trip():
    v = parse_variant("ft-aihub+r8-attn@s43")
    assert (v.train_set, v.recipe, v.seed) == ("aihub", "r8-attn", 43)
    assert v.name == "ft-aihub+r8-attn@s43" and v.stem == "ft-aihub+r8-attn"
    assert parse_variant("ft-aihub").name == "ft-aihub"
    assert parse_variant("base") is None and parse_variant("icl") is None


def test_without_recipes_or_seeds_the_runs_are_the_config_runs(cfg, repo_root):
    c = validated(cfg, repo_root)
    p = plan(c)
    assert p.runs == c["runs"] and p.recipes == {} and p.grids == {}
    assert training_for(c, "aihub_demo") is c["training"]
    assert seed_for(c, "aihub_demo") == c["seed"] == 42
    # one seed equal to the config's seed: the same runs
    c["seeds"] = [42]
    assert plan(c).runs == cfg["runs"]


def test_recipes_grid_and_seeds_expand_to_readable_stable_names(cfg, repo_root):
    cfg["recipes"] = {"r8": {"lora": {"r": 8}}}
    cfg["aliases"] = {"attn": ATTN, "all": ALL7}
    cfg["grids"] = {"lora": {"lora.r": [8, 16], "lora.target_modules": ["attn", "all"]}}
    cfg["seeds"] = [42, 43]
    cfg["runs"]["gemma3-270m"] += ["ft-aihub_demo+r8", "ft-aihub_demo+lora"]
    c = validated(cfg, repo_root)
    p = plan(c)
    assert p.runs["gemma3-270m"] == [
        "base",
        "ft-aihub_demo",
        "ft-aihub_demo@s43",
        "ft-aihub_demo+r8",
        "ft-aihub_demo+r8@s43",
        "ft-aihub_demo+r8-attn",
        "ft-aihub_demo+r8-attn@s43",
        "ft-aihub_demo+r8-all",
        "ft-aihub_demo+r8-all@s43",
        "ft-aihub_demo+r16-attn",
        "ft-aihub_demo+r16-attn@s43",
        # r16-all is the study's own recipe: the study's run, not a second training
    ]
    study = [m for m in p.grids["lora"] if m["study"]]
    assert len(study) == 1 and study[0]["recipe"] is None
    assert study[0]["labels"] == {"lora.r": "r16", "lora.target_modules": "all"}
    t = training_for(c, "aihub_demo+r8-attn@s43")
    assert t["lora"]["r"] == 8 and t["lora"]["target_modules"] == ATTN
    assert t["lora"]["alpha"] == c["training"]["lora"]["alpha"]  # merged, not replaced
    assert t["args"] == c["training"]["args"]
    assert seed_for(c, "aihub_demo+r8-attn@s43") == 43
    groups = seed_groups(p.runs, 42)
    assert groups[("gemma3-270m", "ft-aihub_demo+r8")] == [
        (42, "ft-aihub_demo+r8"),
        (43, "ft-aihub_demo+r8@s43"),
    ]


def test_balance_grid_axis_with_aliases_and_defaults(cfg, repo_root):
    cfg["aliases"] = {"none": None, "oversample": {"method": "oversample"}}
    cfg["grids"] = {"bal": {"balance": ["none", "oversample"]}}
    cfg["runs"]["gemma3-270m"] = ["ft-aihub_demo+bal"]
    c = validated(cfg, repo_root)
    assert plan(c).runs["gemma3-270m"] == ["ft-aihub_demo", "ft-aihub_demo+oversample"]
    schema = yaml.safe_load((repo_root / "schemas" / "config.schema.yaml").read_text())
    t = training_for(c, "aihub_demo+oversample", schema["properties"]["training"])
    assert t["balance"] == {"method": "oversample", "by": "domain", "target": "uniform"}


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda c: c.update(recipes={"bad": {"lora": {"rank": 8}}}), "recipes bad: training.lora"),
        (lambda c: c.update(recipes={"bad": {"lora": {"r": 0}}}), "recipes bad: training.lora.r"),
        (lambda c: c.update(grids={"g": {"lora.rr": [1, 2]}}), "grids (point) rr1: training.lora"),
        (
            lambda c: c.update(recipes={"lr": {"args": {"learning_rte": 1e-4}}}),
            "recipes lr: training.args: unknown SFTConfig option(s): learning_rte",
        ),
        (
            lambda c: c.update(recipes={"b": {"balance": {"method": "smote"}}}),
            "recipes b: training.balance",
        ),
        (
            lambda c: c["runs"]["gemma3-270m"].append("ft-aihub_demo+nope"),
            "unknown recipe or grid 'nope'",
        ),
        (
            lambda c: c.update(grids={"g": {"lora.target_modules": [["q_proj"]]}}),
            "declare it under `aliases`",
        ),
    ],
)
def test_bad_overrides_stop_at_validation_naming_the_key(cfg, repo_root, mutate, needle):
    mutate(cfg)
    with pytest.raises(ConfigError) as e:
        validated(cfg, repo_root)
    assert needle in str(e.value)


def dag_outputs(repo_root, tmp_path, config):
    proc = run_snakemake(
        repo_root, tmp_path, config, "-n", "--cores", "1", "--forceall", "--summary", timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split("\t") for line in proc.stdout.splitlines() if "\t" in line]
    return sorted((r[0], r[2]) for r in rows[1:])


def test_one_seed_and_unused_recipes_leave_the_dag_unchanged(repo_root, tmp_path):
    """config.yaml's output files and rules stay exactly as they are with ``seeds: [42]``
    and a recipe no run uses; a second seed adds its own adapter, generations, scores."""
    demo = yaml.safe_load((repo_root / "config.yaml").read_text(encoding="utf-8"))
    for d in "abc":
        (tmp_path / d).mkdir()
    before = dag_outputs(repo_root, tmp_path / "a", demo)
    same = dict(demo, seeds=[42], recipes={"r8": {"lora": {"r": 8}}})
    assert dag_outputs(repo_root, tmp_path / "b", same) == before
    two = dict(demo, seeds=[42, 7])
    after = dag_outputs(repo_root, tmp_path / "c", two)
    assert set(before) < set(after)
    added = {f for f, _ in set(after) - set(before)}
    assert "results/train/gemma3-270m/aihub_demo@s7/adapter" in added
    assert "results/scores/gemma3-270m/ft-aihub_demo@s7/aihub_demo-test.jsonl" in added
    assert "results/stats/seeds/aihub_demo-test.json" in added
