"""config.datasets entries: loader dispatch, filters, merge report, missing data named."""

from __future__ import annotations

import pytest

from kmedqa.data.demo import write_aihub_demo
from kmedqa.data.sources import load_dataset_spec
from kmedqa.errors import ConfigError
from kmedqa.io import write_jsonl


@pytest.fixture(scope="module")
def aihub_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("aihub")
    write_aihub_demo(root)
    return root


def test_source_split_filter_and_report(aihub_root):
    items, report = load_dataset_spec(
        "a",
        {
            "loader": "aihub",
            "path": str(aihub_root),
            "format": "aihub",
            "source_split": "Validation",
        },
    )
    assert report["n_loaded"] == 480 and report["n_items"] == len(items) == 47
    assert all(
        it["meta"]["source_split"] == "Validation" and it["meta"]["format"] == "aihub"
        for it in items
    )


def test_merge_reports_per_source_counts_and_duplicates(aihub_root, tmp_path):
    items, _ = load_dataset_spec(
        "a", {"loader": "aihub", "path": str(aihub_root), "format": "aihub"}
    )
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_jsonl(first, items[:30])
    write_jsonl(second, [{**it, "id": it["id"] + "-copy"} for it in items[20:40]])  # 10 duplicates
    merged, report = load_dataset_spec(
        "m",
        {"loader": "merge", "path": "-", "sources": ["a", "b"], "format": "instruct"},
        inputs=[str(first), str(second)],
    )
    assert len(merged) == 40 and report["merge"]["n_dropped"] == 10
    assert report["per_source"] == {"a": 30, "b": 10}
    assert all(
        it["meta"]["format"] == "aihub" for it in merged
    )  # merged items keep their own format


def test_missing_local_data_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"datasets\.x\.path: .*nope does not exist"):
        load_dataset_spec(
            "x", {"loader": "aihub", "path": str(tmp_path / "nope"), "format": "aihub"}
        )
