"""``kmedqa bench-generate`` on the tiny model: runs, times both sides, writes the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kmedqa.cli import main
from kmedqa.errors import ConfigError
from kmedqa.generation.bench import demo_items, parse_format_map
from kmedqa.io import write_jsonl
from kmedqa.items import validate_item
from kmedqa.testing import tiny_model_json


@pytest.fixture(scope="module")
def tiny_json(tmp_path_factory) -> Path:
    return tiny_model_json(tmp_path_factory.mktemp("tiny-bench"))


def test_bench_generate_writes_report(tiny_json, tmp_path, capsys):
    items = demo_items(8)
    items_file = tmp_path / "items.jsonl"
    write_jsonl(items_file, items)
    out = tmp_path / "bench.json"
    rc = main(
        ["bench-generate", "--model-json", str(tiny_json), "--items", str(items_file), "--n", "6",
         "--batch-size", "4", "--device", "cpu", "-o", str(out)]
    )  # fmt: skip
    assert rc == 0
    assert "ratio" in capsys.readouterr().out
    rep = json.loads(out.read_text())
    for key in (
        "n_items",
        "device",
        "batch_size",
        "torch_threads",
        "engine",
        "naive",
        "ratio",
        "agreement",
        "n_batches",
    ):
        assert key in rep, key
    assert rep["n_items"] == 6 and rep["batch_size"] == 4 and rep["device"] == "cpu"
    assert rep["torch_threads"] >= 1
    # 6 items of two budgets (3 each) in batches of at most 4: two batches
    assert rep["n_batches"] == 2
    for side in ("engine", "naive"):
        s = rep[side]
        assert s["wall_s"] > 0
        assert s["items_per_s"] == pytest.approx(6 / s["wall_s"])
        assert s["new_tokens_per_s"] == pytest.approx(s["new_tokens"] / s["wall_s"])
        # every item produced at least one and at most its budget of tokens (8 or 24)
        assert 6 <= s["new_tokens"] <= 3 * 24 + 3 * 8
    assert rep["ratio"] == pytest.approx(rep["naive"]["wall_s"] / rep["engine"]["wall_s"])
    ag = rep["agreement"]
    assert ag["n_items"] == 6 and 0 <= ag["same_text"] <= 6
    assert len(ag["differing_ids"]) == 6 - ag["same_text"]
    # the naive loop decodes the same prompts with the same budgets and stop ids: on this
    # model (float32, no near ties) left-padded batching changes nothing
    assert ag["same_text"] == 6 and ag["same_n_new_tokens"] == 6
    assert rep["engine"]["new_tokens"] == rep["naive"]["new_tokens"]
    assert rep["prompt_lookup"] == 3 and rep["draft_tokens_fed"] >= rep["draft_tokens_kept"]


def test_bench_rejects_bad_arguments(tiny_json, tmp_path):
    with pytest.raises(SystemExit) as err:
        main(["bench-generate", "--model-json", str(tiny_json), "--n", "0"])
    assert err.value.code == 2
    with pytest.raises(SystemExit) as err:
        main(["bench-generate", "--model-json", str(tiny_json), "--prompt-lookup", "-1"])
    assert err.value.code == 2
    with pytest.raises(ConfigError, match="DATASET=FORMAT"):
        parse_format_map("aihub71875")
    assert parse_format_map("a=b, c=d") == {"a": "b", "c": "d"}


def test_demo_items_are_valid_and_mixed():
    items = demo_items(12)
    for item in items:
        validate_item(item)
        assert item["options"][item["answer_index"]] in item["answer"]
    assert {i["dataset"] for i in items} == {"aihub71875", "kormedmcqa"}
    assert len({i["id"] for i in items}) == 12
    assert len({i["answer_index"] for i in items}) > 1
