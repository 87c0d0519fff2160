"""Part 1 of the GPU suite: the demo's DAG on CUDA (experiments/demo_gpu.yaml), timed per stage.

Snakemake runs the DAG in its own directory (``--directory WORK``, so the user's
``results/`` is untouched); every rule declares a ``benchmark:`` file, and this module reads
them back (wall s, CPU s, peak RSS per job) and sums them per rule. Used by
``benchmarks/gpu_suite.py``; ``--dry`` there resolves the whole DAG with ``snakemake -n``
and runs the ``materialize`` job for real with a tiny architecture on the CPU, so that the
invocation, the ``source: random`` model and the benchmark parsing are all exercised.
"""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GPU_CONFIG = ROOT / "experiments" / "demo_gpu.yaml"
# import names the DAG's jobs need beyond the suite's own (target "gpu": data, model, train,
# generate; "all": scoring, statistics and the paper too)
DAG_MODULES = {
    "gpu": ("snakemake", "jsonschema", "yaml", "datasets", "trl", "bitsandbytes", "tqdm"),
    "all": ("scipy", "pandas", "matplotlib", "koreanize_matplotlib", "kiwipiepy", "rouge_score"),
}
# --dry: kmedqa.testing.tiny_random_arch (the same model type, tiny: seconds on a CPU), merged
# over the GPU config's architecture
TINY_VOCAB = 8192


def missing_modules(target: str, dry: bool) -> list[str]:
    names = list(DAG_MODULES["gpu"]) + (list(DAG_MODULES["all"]) if target == "all" else [])
    if dry:  # the dry run imports no CUDA-only package
        names = [n for n in names if n != "bitsandbytes"]
    return [f"python package {n!r}" for n in names if importlib.util.find_spec(n) is None]


def targets(config: dict, which: str) -> list[str]:
    """``gpu``: every generation of every run (which needs data, model and training);
    ``all``: the default target, the whole DAG down to paper/."""
    if which == "all":
        return []
    return [
        f"results/generations/{model}/{variant}/{eval_set}.jsonl"
        for model, variants in config["runs"].items()
        for variant in variants
        for eval_set in config["evaluation"]["eval_sets"]
    ]


def snakemake_cmd(workdir: Path, extra: list[str], configs: list[Path] = ()) -> list[str]:
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--configfile",
        str(GPU_CONFIG),
        *map(str, configs),  # merged over it, in order
        "--directory",
        str(workdir),
        "--cores",
        "1",
        "--resources",
        "gpu=1",
        "--scheduler",
        "greedy",  # the ILP scheduler needs PuLP (16 MB), which would not fit the carry
        *extra,
    ]


def read_benchmarks(results: Path) -> list[dict]:
    """One row per job from Snakemake's benchmark TSVs under ``results/benchmarks``."""
    rows = []
    bench = results / "benchmarks"
    for tsv in sorted(bench.rglob("*.tsv")) if bench.is_dir() else []:
        with tsv.open(encoding="utf-8") as fh:
            recs = list(csv.DictReader(fh, delimiter="\t"))
        if not recs:
            continue
        rec = recs[-1]  # one line per repeat; the demo runs each job once
        job = tsv.relative_to(bench).with_suffix("").as_posix()
        rows.append(
            {
                "job": job,
                "rule": job.split("/")[0],
                "wall_s": _num(rec, "s"),
                "cpu_s": _num(rec, "cpu_time"),
                "max_rss_mib": _num(rec, "max_rss"),
            }
        )
    return rows


def _num(rec: dict, key: str) -> float | None:
    try:
        return float(rec[key])
    except (KeyError, TypeError, ValueError):  # "NA" where a job was too short to sample
        return None


def per_rule(rows: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in rows:
        agg = out.setdefault(r["rule"], {"jobs": 0, "wall_s": 0.0})
        agg["jobs"] += 1
        agg["wall_s"] += r["wall_s"] or 0.0
    return out


def run_dag(workdir: Path, *, dry: bool, target: str = "gpu", timeout_s: int = 420) -> dict:
    """Run (or, ``dry``, resolve) the GPU demo DAG in ``workdir``; per-stage times."""
    import yaml

    workdir.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load(GPU_CONFIG.read_text(encoding="utf-8"))
    res: dict = {"config": str(GPU_CONFIG.relative_to(ROOT)), "target": target, "dry": dry}
    steps = [("plan", ["-n", *targets(config, target)], [])]
    if dry:  # one real job, tiny and on the CPU: the random model behind the GPU config
        tiny = workdir / "tiny_model.yaml"
        from kmedqa.testing import tiny_random_arch

        spec = {"architecture": tiny_random_arch(TINY_VOCAB), "dtype": "float32"}
        tiny.write_text(yaml.safe_dump({"models": {"gemma3-270m": spec}}), encoding="utf-8")
        steps.append(("run", ["results/models/gemma3-270m/model.json"], [tiny]))
    else:
        steps.append(("run", targets(config, target), []))
    for name, extra, configs in steps:
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                snakemake_cmd(workdir, extra, configs),
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
            rc, tail = proc.returncode, (proc.stdout + proc.stderr)[-3000:]
        except subprocess.TimeoutExpired as e:
            rc, tail = "timeout", str(e.stderr or "")[-3000:]
        res[f"{name}_s"] = time.perf_counter() - t0
        res[f"{name}_rc"] = rc
        if rc != 0:
            res["error"] = f"snakemake {name} failed ({rc}): see log_tail"
            res["log_tail"] = tail
            break
    res["jobs"] = read_benchmarks(workdir / "results")
    res["per_rule"] = per_rule(res["jobs"])
    res["total_job_wall_s"] = sum(r["wall_s"] or 0.0 for r in res["jobs"])
    return res


def markdown(res: dict) -> list[str]:
    head = f"| demo DAG on the device ({res['config']}, target {res['target']}) | jobs | wall s |"
    lines = [head, "| --- | ---: | ---: |"]
    for rule, agg in sorted(res["per_rule"].items(), key=lambda kv: -kv[1]["wall_s"]):
        lines.append(f"| {rule} | {agg['jobs']} | {agg['wall_s']:.1f} |")
    lines.append(f"| **all jobs** | {len(res['jobs'])} | {res['total_job_wall_s']:.1f} |")
    if "error" in res:
        lines.append(f"\n**{res['error']}**")
    return lines
