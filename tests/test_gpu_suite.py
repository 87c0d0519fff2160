"""benchmarks/gpu_suite.py in its --dry mode: the GPU suite's code runs end to end on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_dry_suite_writes_its_results(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/gpu_suite.py"), "--dry", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "gpu_suite.json").read_text())
    assert res["dry"] and res["training"]["steps"] == 2
    assert res["training"]["s_per_optimizer_step"] > 0
    assert res["training"]["first_step_s"] > 0 and res["ceilings"]["measured"] is False
    g = res["generation"]
    runs = g["runs"]
    assert [(r["variant"], r["batch"]) for r in runs] == [
        (v, b) for v in ("unmerged", "merged", "merged-graph", "merged-lookup") for b in (1, 2, 4)
    ]
    assert g["skipped"] == ["nf4-unmerged: NF4 needs CUDA"]
    assert set(g["loads"]) == {"unmerged", "merged", "merged-graph", "merged-lookup"}
    # the static-cache engine (its steps eager on a CPU) and the engine that feeds guesses
    # write what the one-token eager engine writes
    for b in (1, 2, 4):
        merged = (out / "gpu_suite_work" / f"gen-{b}-merged.jsonl").read_text()
        for v in ("merged-graph", "merged-lookup"):
            other = (out / "gpu_suite_work" / f"gen-{b}-{v}.jsonl").read_text()
            assert merged == other.replace(v, "merged")
    assert set(g["study"]["graph_speedup"]) == set(g["study"]["lookup_cost"]) == {"1", "2", "4"}
    assert sum(r["draft_tokens_fed"] or 0 for r in runs) > 0
    # every row is forced to the same number of new tokens (no early stop on random weights)
    for r in runs:
        gen = out / "gpu_suite_work" / f"gen-{r['batch']}-{r['variant']}.jsonl"
        lines = [json.loads(x) for x in gen.read_text().splitlines()]
        assert len(lines) == r["items"] == r["batch"]
        assert {x["n_new_tokens"] for x in lines} == {g["new_tokens"]}
        assert r["new_tokens"] == r["items"] * g["new_tokens"]
        assert r["ratio_to_bound"] > 1 and r["prompt_tokens"] > 8
    # the decode step outside the engine, on the merged model (no CUDA graph on a CPU)
    assert [p["batch"] for p in g["step_probe"]] == [1, 2, 4]
    assert all(p["eager_step_s"] > 0 and "graph_step_s" not in p for p in g["step_probe"])
    study = g["study"]["basis"]["study_batch"]
    assert study["batch"] == 4 and study["ft_variant"] == "unmerged"
    assert study["base_min"] == pytest.approx(4737 / runs[5]["items_per_s"] / 60)
    md = (out / "gpu_suite.md").read_text()
    assert "| merged | 4 |" in md
    # part 1: the demo DAG on the GPU config, resolved with snakemake -n, and its model job
    # (source random, a tiny architecture on the CPU) run for real and timed from its benchmark
    dag = res["demo_dag"]
    assert dag["config"] == "experiments/demo_gpu.yaml"
    assert (dag["plan_rc"], dag["run_rc"]) == (0, 0), dag.get("log_tail")
    assert [j["job"] for j in dag["jobs"]] == ["materialize/gemma3-270m"]
    assert dag["jobs"][0]["wall_s"] > 0 and dag["per_rule"]["materialize"]["jobs"] == 1
    assert "| materialize | 1 |" in md
    model = json.loads(
        (out / "gpu_suite_work/demo_dag/results/models/gemma3-270m/model.json").read_text()
    )
    assert model["source"] == "random" and model["spec"]["architecture"]["hidden_size"] == 32


def test_missing_prerequisites_fail_in_one_line():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this test checks the refusal on a machine without CUDA")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/gpu_suite.py"), "--out", "/nonexistent"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # this CPU machine has no CUDA: the suite stops at once, saying so, and writes nothing
    assert proc.returncode == 2
    assert proc.stderr.startswith("gpu_suite: missing ") and "CUDA" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--variants", "merged,bogus"], "--variants: unknown ['bogus']: want some of unmerged,"),
        (["--batches", "1,x"], "--batches: '1,x': want whole numbers and commas"),
    ],
)
def test_bad_arguments_are_one_line(args, needle):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/gpu_suite.py"), "--dry", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr
