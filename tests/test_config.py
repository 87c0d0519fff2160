"""The config is validated when the workflow loads: bad keys stop it before any job."""

from __future__ import annotations

import copy
import re
import subprocess
import sys

import pytest
import yaml
from helpers.workflow import run_snakemake

from kmedqa.errors import ConfigError
from kmedqa.workflow import check_config


@pytest.fixture()
def demo_config(repo_root):
    return yaml.safe_load((repo_root / "config.yaml").read_text(encoding="utf-8"))


def dry_run(repo_root, tmp_path, config):
    return run_snakemake(repo_root, tmp_path, config, "-n", "--quiet", "--cores", "1", timeout=300)


def test_demo_config_dry_runs(repo_root, tmp_path, demo_config):
    proc = dry_run(repo_root, tmp_path, demo_config)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda c: c.update(bogus_key=1), "bogus_key"),
        (lambda c: c["training"].update(quantisation="nf4"), "quantisation"),
        (lambda c: c["training"]["lora"].update(r="sixteen"), "sixteen"),
        (lambda c: c["evaluation"]["generation"].update(batch_size=0), "batch_size"),
        (lambda c: c["evaluation"].update(scoring={"bleurt": {"modle": "x"}}), "modle"),
        (lambda c: c["runs"].update({"gemma3-270m": ["base", "fine-tuned"]}), "fine-tuned"),
    ],
)
def test_schema_rejects_bad_config_naming_the_key(repo_root, tmp_path, demo_config, mutate, needle):
    cfg = copy.deepcopy(demo_config)
    mutate(cfg)
    proc = dry_run(repo_root, tmp_path, cfg)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert needle in out
    assert "Failed validating" not in out  # one line, not a schema dump
    assert not (tmp_path / "results").exists()  # stopped before any job


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda c: c["train_sets"].update(x=["nope"]), "train_sets.x"),
        (
            lambda c: c["evaluation"]["eval_sets"].update(e={"dataset": "nope", "split": "test"}),
            "eval_sets.e.dataset",
        ),
        (lambda c: c["runs"].update({"gemma3-270m": ["ft-missing"]}), "ft-missing"),
        (lambda c: c["runs"].update({"unknown-model": ["base"]}), "runs.unknown-model"),
        (lambda c: c["datasets"]["aihub_demo"].update(format="nope"), "datasets.aihub_demo.format"),
        (
            lambda c: c["compare"]["metrics"].append("summary_aggregate"),
            "needs evaluation.scoring.bertscore.model",
        ),
        (
            lambda c: (
                c["evaluation"].update(scoring={"bertscore": {"model": "roberta-large"}}),
                c["compare"]["metrics"].append("summary_bleurt"),
            ),
            "summary_bleurt needs evaluation.scoring.bleurt.model",
        ),
    ],
)
def test_cross_references_are_checked(demo_config, mutate, needle):
    cfg = copy.deepcopy(demo_config)
    mutate(cfg)
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        check_config(cfg)


def test_experiment_configs_validate(repo_root):
    import jsonschema

    schema = yaml.safe_load((repo_root / "schemas" / "config.schema.yaml").read_text())
    for path in sorted((repo_root / "experiments").glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
        jsonschema.validate(cfg, schema)
        check_config(cfg)


def test_slurm_profile_dry_runs_a_study(repo_root, tmp_path):
    """profiles/slurm (GPU rules on the gpu partition) plans the clinical-notes study."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--profile", str(repo_root / "profiles/slurm"),
         "--snakefile", str(repo_root / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(repo_root / "experiments/clinical_notes.yaml")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.M))
    # 3 models x (icl, ft-mts) + Gemini 2.5 Flash icl (hosted: no materialize) on two eval
    # sets (test sets 1 and 2); BERTScore/BLEURT configured in the study
    keys = ("materialize", "train", "generate", "semantic_score", "score")
    assert {k: counts.get(k) for k in keys} == {
        "materialize": "3",
        "train": "3",
        "generate": "14",
        "semantic_score": "14",
        "score": "14",
    }, out[-3000:]


def test_input_files_is_always_a_list():
    from kmedqa.workflow import input_files

    assert input_files("a.jsonl") == ["a.jsonl"]
    assert input_files(["a", "b"]) == ["a", "b"]
    assert input_files([]) == []


def test_figure_stem_of_a_named_figure_output():
    from kmedqa.paper.figures import figure_stem

    assert figure_stem(["paper/figures/forest.pdf", "paper/figures/forest.png"]) == (
        "paper/figures/forest"
    )
    with pytest.raises(ValueError):
        figure_stem(["a.pdf", "b.png"])


def test_scripts_read_named_inputs_and_outputs(repo_root):
    """No script indexes snakemake.input/output by position (rules name their files)."""
    scripts = sorted((repo_root / "scripts").glob("*.py"))
    assert scripts
    for path in scripts:
        text = path.read_text(encoding="utf-8")
        bad = re.findall(r"smk\.(?:input|output|log)(?:\[|\)|,| for)", text)
        assert not bad, f"{path.name}: {bad}"


def test_validation_fills_in_the_schema_defaults(demo_config, repo_root):
    from kmedqa.workflow import validate_config

    cfg = copy.deepcopy(demo_config)
    del cfg["compare"]
    del cfg["evaluation"]["icl"]
    cfg["evaluation"]["generation"] = {"device": "cpu"}
    ds = next(iter(cfg["datasets"].values()))
    ds["split"] = {"mode": "stratified"}
    ds["sample"] = {"n": 5}
    validate_config(cfg, str(repo_root / "schemas" / "config.schema.yaml"))
    assert cfg["compare"] == {
        "metrics": ["mcq_strict", "rougeL_ko"],
        "resamples": 10000,
        "ci_method": "percentile",
    }
    assert cfg["evaluation"]["icl"] == {"k": 3, "seed": 0}
    gen = cfg["evaluation"]["generation"]
    assert gen == {
        "device": "cpu",
        "batch_size": 16,
        "merge_adapter": False,
        "cuda_graph": False,  # opt-in until timed on a GPU against the eager engine
        "prompt_lookup": 3,
        "backend": "hf",
        "adapter_base": "training",
        "api": {  # how hosted models are asked
            "max_retries": 5,
            "max_malformed_retries": 1,
            "timeout_s": 120,
            "backoff": {"base_s": 1.0, "max_s": 60.0},
        },
    }
    assert ds["may_leave_machine"] is False  # nothing is sent out unless the config says so
    assert ds["split"] == {
        "mode": "stratified",
        "ratios": [0.8, 0.1, 0.1],
        "strata": ["domain", "q_type"],
        "exclude": [],
    }
    assert ds["sample"] == {"n": 5, "per": "none", "seed": 42}
    # what the config says is kept, and the demo config itself validates unchanged where set
    full = copy.deepcopy(demo_config)
    validate_config(full, str(repo_root / "schemas" / "config.schema.yaml"))
    assert full["compare"] == demo_config["compare"]
    assert full["evaluation"]["icl"] == demo_config["evaluation"]["icl"]


def test_scripts_take_no_defaults_of_their_own(repo_root):
    """Defaults are declared in schemas/config.schema.yaml, not as .get(key, default) in scripts."""
    for path in sorted((repo_root / "scripts").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        bad = re.findall(r"(?<!input)\.get\(\s*\"[A-Za-z_]+\"\s*,[^)]*\)", text)
        assert not bad, f"{path.name}: {bad}"


def test_generation_settings_come_from_the_validated_config(repo_root, demo_config):
    """The engine's knobs are one settings object built from ``evaluation.generation`` with
    the schema's defaults filled in (a config that omits a knob gets the schema's value)."""
    from kmedqa.generation import GenerationSettings
    from kmedqa.workflow import validate_config

    cfg = copy.deepcopy(demo_config)
    cfg["evaluation"]["generation"] = {"max_new_tokens": {"short": 5}}
    validate_config(cfg, str(repo_root / "schemas" / "config.schema.yaml"))
    s = GenerationSettings.from_config(cfg["evaluation"]["generation"], "nf4")
    assert s == GenerationSettings(
        batch_size=16, device="auto", backend="hf", merge_adapter=False,
        max_new_tokens={"short": 5}, quantization="nf4", share_prefix=True, cuda_graph=False,
        prompt_lookup=3,
    )  # fmt: skip
    assert GenerationSettings() == GenerationSettings.from_config(
        {"batch_size": 16, "device": "auto", "backend": "hf", "merge_adapter": False}, "none"
    )
