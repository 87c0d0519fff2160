"""The clinical-notes DAG (experiments/clinical_notes_demo.yaml) with hosted runs only:
study 003's Gemini 3-shot run and an OpenAI-compatible server (a local vLLM, say), both
answered by the loopback fake through the real SDKs, on tiny MTS-Dialog-layout CSVs the
test writes. Raw CSV -> items -> splits -> generate (no materialize, no GPU) -> scores ->
comparisons -> paper tables, in well under a minute."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from helpers.fake_hosted import FakeHosted
from helpers.workflow import run_snakemake

from kmedqa.data.mtsdialog import SPLIT_FILES

pytestmark = pytest.mark.slow

GEMINI_KEY = "gk-E2eGeminiKeyNeverWritten-0123456789"
OPENAI_KEY = "sk-E2eOpenAIKeyNeverWritten-0123456789"
CODES = ["GENHX", "ROS", "MEDICATIONS", "ALLERGY"]


def write_mts(root: Path) -> None:
    counts = {"train": 8, "val": 2, "test": 6}
    root.mkdir(parents=True)
    for name, split in SPLIT_FILES.items():
        with (root / name).open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["ID", "section_header", "section_text", "dialogue"])
            for i in range(counts[split]):
                code = CODES[i % len(CODES)]
                marker = " REFUSE-ME" if (split, i) == ("test", 2) else ""
                w.writerow(
                    [
                        i,
                        code,
                        f"The patient reports symptom {i} of the {split} set.",
                        f"Doctor: How are you, {split} {i}?\nPatient: Not well, symptom {i}.{marker}",
                    ]
                )


def reply(body):
    """OpenAI base run (system + user, no shots): refuse the marked dialogue."""
    text = json.dumps(body)
    if "messages" in body and len(body["messages"]) == 2 and "REFUSE-ME" in text:
        return ("refuse", None)
    return ("ok", "GENHX#The patient reports symptom 1 of the test set.")


@pytest.fixture
def server():
    s = FakeHosted().start()
    s.default = reply
    yield s
    s.stop()


def test_clinical_notes_dag_with_hosted_runs(repo_root, tmp_path, server, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    write_mts(tmp_path / "mts")
    cfg = yaml.safe_load(
        (repo_root / "experiments" / "clinical_notes_demo.yaml").read_text(encoding="utf-8")
    )
    cfg["datasets"]["mts"].update(path=str(tmp_path / "mts"), may_leave_machine=True)
    del cfg["datasets"]["mts"]["sample"]
    cfg["models"] = {
        "gemini-2.5-flash": {
            "source": "api",
            "provider": "gemini",
            "id": "gemini-2.5-flash",
            "base_url": server.url,
            "format": "mtsdialog_gemini_3shot",
            "thinking_budget": -1,
            "temperature": 0,
            "price": {"input": 0.3, "output": 2.5},
        },
        "local-vllm": {
            "source": "api",
            "provider": "openai",
            "id": "Qwen/Qwen3-4B",
            "base_url": server.url + "/v1",
        },
    }
    cfg["runs"] = {"gemini-2.5-flash": ["icl"], "local-vllm": ["base", "icl"]}
    cfg["evaluation"]["eval_sets"] = {"mts-test": {"dataset": "mts", "split": "test"}}
    cfg["evaluation"]["icl"] = {"k": 3, "seed": 42}
    cfg["compare"]["resamples"] = 200
    targets = ("paper/tables/clinical_notes.md", "results/stats/compare/mts-test.json")
    proc = run_snakemake(repo_root, tmp_path, cfg, *targets, "--cores", "2", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    assert not (tmp_path / "results" / "models").exists()  # nothing materialized
    gem = tmp_path / "results/generations/gemini-2.5-flash/icl/mts-test"
    summary = json.loads(gem.with_suffix(".summary.json").read_text())
    assert summary["backend"] == "api" and summary["n_items"] == 6
    assert summary["tokens"] == {"input": 720, "output": 180, "thinking": 42}
    assert summary["cost_estimate"]["usd"] == pytest.approx((720 * 0.3 + 222 * 2.5) / 1e6)
    gemini_posts = [r for r in server.requests if ":generateContent" in r[1]]
    assert len(gemini_posts) == 6
    prompt = gemini_posts[0][3]["contents"][0]["parts"][0]["text"]
    assert len(gemini_posts[0][3]["contents"]) == 1 and prompt.count("Output: ") == 3
    assert prompt.endswith("symptom 0.\nOutput:")

    table = (tmp_path / "paper/tables/clinical_notes.md").read_text(encoding="utf-8")
    assert "gemini-2.5-flash:icl" in table and "local-vllm:base" in table
    scores = [
        json.loads(x) for x in (tmp_path / "results/scores/local-vllm/base/mts-test.jsonl").open()
    ]
    refused = [s for s in scores if s["status"] == "refused"]
    assert len(refused) == 1 and refused[0]["section_correct"] is None
    comps = json.loads((tmp_path / "results/stats/compare/mts-test.json").read_text())
    sec = [c for c in comps if c["metric"] == "section_correct"][0]
    assert sec["n"] == 5 and sec["n_not_answered"] == 1

    n_posts = server.n_posts  # a rerun with the outputs gone asks nothing: all cached
    gens = sorted((tmp_path / "results/generations").rglob("*.jsonl"))
    before = [p.read_text(encoding="utf-8") for p in gens]
    for p in gens:
        p.unlink()
    rel = [str(p.relative_to(tmp_path)) for p in gens]
    proc = run_snakemake(repo_root, tmp_path, cfg, *rel, "--cores", "2", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert server.n_posts == n_posts
    assert [p.read_text(encoding="utf-8") for p in gens] == before

    for p in tmp_path.rglob("*"):
        if p.is_file() and p.suffix != ".pdf":
            text = p.read_text(encoding="utf-8", errors="replace")
            assert GEMINI_KEY not in text and OPENAI_KEY not in text, p
