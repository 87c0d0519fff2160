"""benchmarks/decode_step_cost.py runs on a tiny model and fits what it measured."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from kmedqa.testing import tiny_model_json

ROOT = Path(__file__).resolve().parents[1]


def test_decode_step_cost_writes_steps_and_their_fit(tmp_path):
    out = tmp_path / "cost.json"
    cmd = [
        sys.executable, str(ROOT / "benchmarks/decode_step_cost.py"),
        "--model-json", str(tiny_model_json(tmp_path)), "--batch-sizes", "1,2,4",
        "--prompt-len", "12", "--steps", "3", "--threads", "1", "-o", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert [r["batch"] for r in res["rows"]] == [1, 2, 4]
    assert all(r["prefill_s"] > 0 and r["decode_step_s"] > 0 for r in res["rows"])
    fit = statistics.linear_regression(
        [r["batch"] for r in res["rows"]], [r["decode_step_s"] for r in res["rows"]]
    )
    assert res["decode_step_fit_s"] == {"fixed": fit.intercept, "per_row": fit.slope}
    assert res["model"] == "tiny" and res["torch_threads"] == 1
