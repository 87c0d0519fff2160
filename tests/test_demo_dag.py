"""benchmarks/demo_dag.py: the GPU suite's part 1 reads Snakemake's benchmark files."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import demo_dag  # noqa: E402

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def test_per_stage_times_come_from_the_benchmark_files(tmp_path):
    bench = tmp_path / "results" / "benchmarks"
    (bench / "generate" / "m" / "base").mkdir(parents=True)
    (bench / "generate" / "m" / "base" / "a.tsv").write_text(
        HEADER + "12.5\t0:00:12\t900\t1\t1\t1\t0\t0\t50\t11.0\n"
    )
    (bench / "generate" / "m" / "base" / "b.tsv").write_text(
        HEADER + "7.5\t0:00:07\t800\t1\t1\t1\t0\t0\t50\tNA\n"
    )
    (bench / "train").mkdir()
    (bench / "train" / "m.tsv").write_text(HEADER + "30\t0:00:30\t2000\t1\t1\t1\t0\t0\t90\t28\n")
    (bench / "empty.tsv").write_text(HEADER)
    rows = demo_dag.read_benchmarks(tmp_path / "results")
    assert [r["job"] for r in rows] == ["generate/m/base/a", "generate/m/base/b", "train/m"]
    assert rows[1]["cpu_s"] is None and rows[0]["cpu_s"] == 11.0
    agg = demo_dag.per_rule(rows)
    assert agg == {"generate": {"jobs": 2, "wall_s": 20.0}, "train": {"jobs": 1, "wall_s": 30.0}}
    md = "\n".join(
        demo_dag.markdown(
            {"config": "c", "target": "gpu", "per_rule": agg, "jobs": rows, "total_job_wall_s": 50}
        )
    )
    assert md.index("| train | 1 | 30.0 |") < md.index("| generate | 2 | 20.0 |")


def test_gpu_config_is_the_demo_with_qlora_as_the_study_runs_it():
    gpu = yaml.safe_load((ROOT / "experiments" / "demo_gpu.yaml").read_text())
    cpu = yaml.safe_load((ROOT / "config.yaml").read_text())
    for key in ("datasets", "runs", "train_sets", "compare", "judge"):
        assert gpu[key] == cpu[key], key
    assert gpu["evaluation"]["eval_sets"] == cpu["evaluation"]["eval_sets"]
    t = gpu["training"]
    assert (t["quantization"], t["device"]) == ("nf4", "cuda")
    assert t["args"]["optim"] == "paged_adamw_8bit" and t["args"]["gradient_checkpointing"]
    assert t["args"]["bf16"] and t["lora"] == cpu["training"]["lora"]
    for k in ("max_steps", "per_device_train_batch_size", "max_length", "learning_rate"):
        assert t["args"][k] == cpu["training"]["args"][k], k
    arch = gpu["models"]["gemma3-270m"]["architecture"]
    assert gpu["models"]["gemma3-270m"]["source"] == "random"
    assert (arch["vocab_size"], arch["hidden_size"], arch["num_hidden_layers"]) == (262144, 640, 18)
    assert len(arch["layer_types"]) == arch["num_hidden_layers"]
    # the targets of part 1 are every generation of every run
    targets = demo_dag.targets(gpu, "gpu")
    assert len(targets) == 3 * 2 and all(t.startswith("results/generations/") for t in targets)
    assert demo_dag.targets(gpu, "all") == []
