"""Dispatch a ``config.datasets.<name>`` entry to its loader."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from kmedqa.data.expect import check_expected
from kmedqa.data.kormedmcqa import HUB_ID as KORMEDMCQA_HUB_ID
from kmedqa.errors import ConfigError
from kmedqa.items import read_items


def _is_hub_id(spec: dict[str, Any]) -> bool:
    return spec["loader"] == "kormedmcqa" and spec["path"] == KORMEDMCQA_HUB_ID


def load_dataset_spec(
    name: str, spec: dict[str, Any], inputs: list[str] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Normalized items of one declared dataset and a report of what was read.

    ``inputs``: the upstream items files, for ``merge``; its report holds the per-source
    counts and the duplicates dropped.
    """
    report: dict[str, Any] = {"dataset": name, "loader": spec["loader"], "path": spec["path"]}
    loader = spec["loader"]
    path = spec["path"]
    if (
        loader not in ("merge",)
        and not spec.get("demo")
        and not _is_hub_id(spec)
        and not Path(path).exists()
    ):
        raise ConfigError(
            f"datasets.{name}.path: {path} does not exist; put the dataset there "
            f"(see README, 'Running a study') or change the path in the config"
        )
    if spec.get("split_of_file") and loader != "mtsdialog":
        raise ConfigError(f"datasets.{name}.split_of_file: only the mtsdialog loader reads it")
    encoding = spec.get("encoding")
    if loader == "aihub":
        from kmedqa.data.aihub import load_aihub

        items = load_aihub(path, encoding=encoding)
    elif loader == "kormedmcqa":
        from kmedqa.data.kormedmcqa import load_kormedmcqa

        items = load_kormedmcqa(path, exam=spec.get("exam", "doctor"), encoding=encoding)
    elif loader == "mtsdialog":
        from kmedqa.data.mtsdialog import load_mtsdialog

        items = load_mtsdialog(path, split=spec.get("split_of_file"), encoding=encoding)
    elif loader == "instruct":
        from kmedqa.data.instruct import load_instruct

        items = load_instruct(path, name, encoding=encoding)
    elif loader == "items":
        items = read_items(path, encoding=encoding)
    elif loader == "merge":
        from kmedqa.data.merge import merge_sources

        sources = spec.get("sources") or []
        if len(sources) != len(inputs or []):
            raise ConfigError(f"datasets.{name}: merge needs one items file per source")
        items, report["merge"] = merge_sources(
            [(s, read_items(f)) for s, f in zip(sources, inputs, strict=True)]
        )
    else:
        raise ConfigError(f"datasets.{name}.loader: unknown loader {loader!r}")
    report["n_loaded"] = len(items)
    if spec.get("source_split"):  # e.g. AI Hub's Training labels only
        items = [it for it in items if it["meta"].get("source_split") == spec["source_split"]]
        report["source_split"] = spec["source_split"]
    if not items:
        raise ConfigError(f"datasets.{name}: the loader found no items in {path}")
    for it in items:  # the prompt format travels with the item (training, generation, scoring)
        it["meta"].setdefault("format", spec["format"])  # merged items keep their own
        it["meta"].setdefault("config_dataset", name)
    report["n_items"] = len(items)
    report["per_source"] = dict(
        sorted(Counter(it["meta"].get("source") or it["dataset"] for it in items).items())
    )
    expect = check_expected(name, spec.get("expect"), {"items": items})
    if expect is not None:  # the study's reported counts vs this download: warnings only
        report["expect"] = expect
    return items, report
