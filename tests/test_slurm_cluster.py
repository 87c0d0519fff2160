"""The tiny-model DAG on a real one-node SLURM cluster, through profiles/slurm.

    python -m pytest -m cluster tests/test_slurm_cluster.py      (.ci/run: make test-cluster)

`tests/cluster/slurm_up.sh` installs Debian's slurm-wlm and munge when missing, starts munged,
slurmctld and slurmd on this machine and waits for the node to be idle. The workflow then runs
through `snakemake --profile` with snakemake-executor-plugin-slurm: first with one `train` job
cancelled mid-run (`scancel`), which fails the run, then again, which completes. Its outputs must
equal a local run's, and every job must be in SLURM's job-completion log (`sacct --completion`).

The profile is profiles/slurm itself, with only what this 2-CPU node cannot give scaled down
(memory, CPUs per task, threads) and the two settings a cluster without accounting needs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_workflow_e2e import snakemake as run_local
from test_workflow_e2e import tiny_config

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
UP = ROOT / "tests" / "cluster" / "slurm_up.sh"
TARGETS = (
    "results/scores/tiny/base/aihub_demo-test.jsonl",
    "results/scores/tiny/ft-aihub_demo/aihub_demo-test.jsonl",
)
COMPARED = (
    "results/data/aihub_demo/train.jsonl",
    "results/data/aihub_demo/test.jsonl",
    "results/generations/tiny/base/aihub_demo-test.jsonl",
    "results/generations/tiny/ft-aihub_demo/aihub_demo-test.jsonl",
    *TARGETS,
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm")
    try:
        proc = subprocess.run(["bash", str(UP), str(state)], capture_output=True, text=True)
        if proc.returncode == 3:
            pytest.skip(f"no one-node SLURM cluster here: {proc.stderr.strip()}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield dict(os.environ, SLURM_CONF=str(state / "slurm.conf"))
    finally:  # the daemons are stopped by their pids, also when the start failed
        subprocess.run(["bash", str(UP), "--down", str(state)], check=False)


def scaled_profile(tmp: Path) -> Path:
    """profiles/slurm with memory, CPUs and threads scaled to the one 2-CPU test node."""
    prof = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text(encoding="utf-8"))
    prof["default-resources"].update(mem_mb=1000, cpus_per_task=1, runtime=30)
    for res in prof["set-resources"].values():
        for key, value in (("mem_mb", 2000), ("cpus_per_task", 1), ("runtime", 30)):
            if key in res:
                res[key] = value
    prof["set-threads"] = {rule: 1 for rule in prof.get("set-threads", {})}
    prof.update(
        {
            "jobs": 2,
            "retries": 0,  # the cancelled job must fail the run, not be retried silently
            "latency-wait": 5,
            "slurm-status-command": "squeue",  # no slurmdbd here: sacct has no accounting
            "slurm-no-account": True,
            "slurm-init-seconds-before-status-checks": 1,
            "seconds-between-status-checks": 2,
        }
    )
    out = tmp / "profile"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(prof), encoding="utf-8")
    return out


def slurm_cmd(work: Path, cfg_file: Path, profile: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "snakemake",
        *TARGETS,
        "--profile",
        str(profile),
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(work),
        "--configfile",
        str(cfg_file),
    ]


def squeue(env, *fmt: str) -> list[list[str]]:
    out = subprocess.run(
        ["squeue", "-h", "-o", "|".join(fmt)], env=env, capture_output=True, text=True, check=True
    ).stdout
    return [line.split("|") for line in out.splitlines() if line.strip()]


def test_dag_on_slurm_with_a_cancelled_job(cluster, repo_root, tiny_model_dir, tmp_path):
    cfg = tiny_config(repo_root, tiny_model_dir)
    cfg["runs"] = {"tiny": ["base", "ft-aihub_demo"]}
    cfg["training"]["args"].update(max_steps=8, save_steps=2)

    local = tmp_path / "local"
    local.mkdir()
    proc = run_local(repo_root, local, cfg, *TARGETS)
    assert proc.returncode == 0, proc.stderr[-4000:]

    work = tmp_path / "slurm"
    work.mkdir()
    cfg_file = work / "test-config.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    profile = scaled_profile(tmp_path)
    log1 = (tmp_path / "slurm-run1.log").open("w")
    run1 = subprocess.Popen(
        slurm_cmd(work, cfg_file, profile), env=cluster, stdout=log1, stderr=subprocess.STDOUT
    )
    # The plugin puts the rule name in each job's comment: wait for `train` to run, cancel it.
    cancelled = None
    deadline = time.monotonic() + 600
    while cancelled is None and time.monotonic() < deadline and run1.poll() is None:
        for job_id, state, comment in squeue(cluster, "%i", "%T", "%k"):
            if state == "RUNNING" and "rule_train" in comment:
                time.sleep(3)  # mid-run: the model is loaded, steps are being taken
                subprocess.run(["scancel", job_id], env=cluster, check=True)
                cancelled = job_id
                break
        time.sleep(0.5)
    rc1 = run1.wait(timeout=600)
    log1.close()
    text1 = (tmp_path / "slurm-run1.log").read_text(errors="replace")
    assert cancelled is not None, "never saw the train job running:\n" + text1[-4000:]
    assert rc1 != 0, "the run with a cancelled job must fail:\n" + text1[-4000:]
    assert not (work / TARGETS[1]).exists()

    run2 = subprocess.run(
        slurm_cmd(work, cfg_file, profile), env=cluster, capture_output=True, text=True, timeout=900
    )
    assert run2.returncode == 0, run2.stdout[-3000:] + run2.stderr[-5000:]

    for rel in COMPARED:
        assert (work / rel).read_bytes() == (local / rel).read_bytes(), rel

    # Every job went through SLURM: the job-completion log has the cancelled train job and the
    # rerun's jobs, all of this run's, COMPLETED.
    acct = subprocess.run(
        ["sacct", "--completion", "-n", "-P", "-o", "JobID,JobName,State"],
        env=cluster,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    states = {line.split("|")[0]: line.split("|")[2] for line in acct if line.count("|") == 2}
    assert states.get(cancelled) == "CANCELLED", acct
    rerun_ids = set(re.findall(r"SLURM jobid (\d+)", run2.stdout + run2.stderr))
    assert "train" in run2.stdout + run2.stderr and len(rerun_ids) >= 3, run2.stderr[-3000:]
    assert {states.get(j) for j in rerun_ids} == {"COMPLETED"}, (acct, sorted(rerun_ids))
