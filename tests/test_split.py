"""Splits: deterministic, stratified, lossless, with a manifest that matches the files."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from helpers.cli import run_cli

from kmedqa.data.split import (
    SPLIT_NAMES,
    allocate,
    items_sha256,
    predefined_split,
    stratified_split,
    stratum_of,
    write_split,
)
from kmedqa.errors import ConfigError, InputError
from kmedqa.io import read_jsonl, sha256_file
from kmedqa.io import write_jsonl as io_write_jsonl
from kmedqa.items import make_item

STRATA_SIZES = {
    ("내과", "객관식"): 200,
    ("내과", "단답형"): 37,
    ("내과", "서술형"): 25,
    ("산부인과", "객관식"): 41,
    ("산부인과", "단답형"): 5,
    ("산부인과", "서술형"): 3,
    ("소아청소년과", "객관식"): 19,
    ("소아청소년과", "단답형"): 2,
    ("응급의학과", "서술형"): 1,
}
TASK = {"객관식": "mcq", "단답형": "short", "서술형": "descriptive"}


def make_items(sizes=STRATA_SIZES, split_key=None):
    items = []
    n = 0
    for (domain, q_type), size in sizes.items():
        for _ in range(size):
            n += 1
            mcq = q_type == "객관식"
            meta = {}
            if split_key:
                meta[split_key] = ("train", "dev", "test", "fewshot")[n % 4]
            items.append(
                make_item(
                    id=f"t-{n:04d}",
                    dataset="aihub71875" if n % 2 else "kormedmcqa",
                    task=TASK[q_type],
                    domain=domain,
                    q_type=q_type,
                    question=f"질문 {n}",
                    answer="1) 가" if mcq else f"답 {n}",
                    options=["가", "나"] if mcq else None,
                    answer_index=0 if mcq else None,
                    meta=meta,
                )
            )
    random.Random(0).shuffle(items)  # input order must not matter
    return items


def files(outdir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(outdir.iterdir())}


def test_rerun_is_byte_identical_and_input_order_free(tmp_path):
    items = make_items()
    write_split(items, tmp_path / "a", seed=42)
    write_split(list(reversed(items)), tmp_path / "b", seed=42)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert set(files(tmp_path / "a")) == {"train.jsonl", "val.jsonl", "test.jsonl", "manifest.json"}
    write_split(items, tmp_path / "c", seed=7)
    assert (tmp_path / "a/test.jsonl").read_bytes() != (tmp_path / "c/test.jsonl").read_bytes()


def test_nothing_lost_or_duplicated():
    items = make_items()
    parts = stratified_split(items, seed=42)
    ids = [it["id"] for name in SPLIT_NAMES for it in parts[name]]
    assert len(ids) == len(set(ids)) == len(items)
    assert set(ids) == {it["id"] for it in items}
    for name in SPLIT_NAMES:
        assert [it["id"] for it in parts[name]] == sorted(it["id"] for it in parts[name])


def test_stratification_and_totals():
    items = make_items()
    parts = stratified_split(items, ratios=(0.8, 0.1, 0.1), seed=42)
    n = len(items)
    totals = {name: len(parts[name]) for name in SPLIT_NAMES}
    assert totals == {
        "train": 267,
        "val": 33,
        "test": 33,
    }  # largest remainder of 333 * (.8, .1, .1)
    assert n == 333
    per = {
        name: Counter(stratum_of(it, ("domain", "q_type")) for it in parts[name])
        for name in SPLIT_NAMES
    }
    for key, size in STRATA_SIZES.items():
        got = [per[name][key] for name in SPLIT_NAMES]
        assert sum(got) == size
        if size >= 10:  # each sizeable stratum is 8:1:1 up to rounding
            for count, ratio in zip(got, (0.8, 0.1, 0.1), strict=True):
                assert abs(count - size * ratio) < 1.5, (key, got)
        if size >= 2:
            assert got[2] >= 1, (key, got)  # small strata still get a test item
        if size >= 3:
            assert got[1] >= 1, (key, got)


@pytest.mark.parametrize("seed", range(5))
def test_allocate_keeps_group_sizes_and_global_targets(seed):
    rng = random.Random(seed)
    sizes = {f"g{i}": rng.choice([1, 2, 3, 4, 7, 13, 50, 333]) for i in range(rng.randint(1, 12))}
    alloc = allocate(sizes, (0.8, 0.1, 0.1))
    for key, size in sizes.items():
        assert sum(alloc[key]) == size and min(alloc[key]) >= 0
    n = sum(sizes.values())
    col = [sum(a[j] for a in alloc.values()) for j in range(3)]
    exact = [n * r for r in (0.8, 0.1, 0.1)]
    assert all(abs(c - e) < 1 for c, e in zip(col, exact, strict=True)), (sizes, col)


def test_manifest_matches_files(tmp_path):
    items = make_items()
    manifest = write_split(items, tmp_path, seed=42)
    on_disk = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk == manifest
    assert manifest["mode"] == "stratified" and manifest["seed"] == 42
    assert manifest["ratios"] == [0.8, 0.1, 0.1] and manifest["strata"] == ["domain", "q_type"]
    assert manifest["sources"] == ["aihub71875", "kormedmcqa"]
    assert manifest["input"] == {"n_items": len(items), "sha256": items_sha256(items)}
    for name in SPLIT_NAMES:
        rows = read_jsonl(tmp_path / f"{name}.jsonl")
        assert manifest["totals"][name] == len(rows) == manifest["files"][name]["n"]
        assert manifest["files"][name]["sha256"] == sha256_file(tmp_path / f"{name}.jsonl")
        counts = Counter((r["domain"], r["q_type"]) for r in rows)
        flat = {(d, q): c for d, qs in manifest["counts"][name].items() for q, c in qs.items()}
        assert flat == dict(counts)


def test_input_sha_equals_canonical_items_file(tmp_path):
    items = make_items()
    io_write_jsonl(tmp_path / "items.jsonl", sorted(items, key=lambda it: it["id"]))
    assert items_sha256(items) == sha256_file(tmp_path / "items.jsonl")


def test_predefined_mode(tmp_path):
    items = make_items(split_key="split")
    manifest = write_split(items, tmp_path, predefined="split")
    expect = Counter(
        {"train": "train", "dev": "val", "test": "test", "fewshot": "train"}[it["meta"]["split"]]
        for it in items
    )
    assert manifest["totals"] == {name: expect[name] for name in SPLIT_NAMES}
    assert manifest["mode"] == "predefined" and manifest["predefined_key"] == "split"
    assert manifest["seed"] is None and manifest["ratios"] is None
    by_id = {it["id"]: it for it in items}
    for row in read_jsonl(tmp_path / "val.jsonl"):
        assert by_id[row["id"]]["meta"]["split"] == "dev"


def test_predefined_aihub_source_split():
    items = make_items(sizes={("내과", "객관식"): 4})
    for it, name in zip(items, ["Training", "Training", "Validation", "Training"], strict=True):
        it["meta"]["source_split"] = name
    parts = predefined_split(items, "meta.source_split")
    assert [len(parts[n]) for n in SPLIT_NAMES] == [3, 1, 0]


def test_all_test_mode(tmp_path):
    items = make_items()
    manifest = write_split(items, tmp_path, all_test=True)
    assert (tmp_path / "train.jsonl").read_bytes() == b"" and (
        tmp_path / "val.jsonl"
    ).read_bytes() == b""
    assert len(read_jsonl(tmp_path / "test.jsonl")) == len(items)
    assert manifest["mode"] == "all_test" and manifest["totals"]["test"] == len(items)


def test_split_cli_modes(tmp_path, capsys):
    src = tmp_path / "items.jsonl"
    io_write_jsonl(src, make_items(split_key="split"))
    rc, _, err = run_cli(
        [
            "split",
            src,
            "-o",
            tmp_path / "s1",
            "--seed",
            "42",
            "--ratios",
            "0.8",
            "0.1",
            "0.1",
            "--strata",
            "domain",
            "q_type",
        ],
        capsys,
    )
    assert rc == 0, err
    rc, _, err = run_cli(["split", src, "-o", tmp_path / "s2"], capsys)
    assert rc == 0, err
    assert files(tmp_path / "s1") == files(tmp_path / "s2")
    rc, _, err = run_cli(["split", src, "-o", tmp_path / "p", "--predefined", "split"], capsys)
    assert (
        rc == 0 and json.loads((tmp_path / "p/manifest.json").read_text())["mode"] == "predefined"
    )
    rc, _, err = run_cli(["split", src, "-o", tmp_path / "t", "--all-test"], capsys)
    assert rc == 0 and json.loads((tmp_path / "t/manifest.json").read_text())["mode"] == "all_test"


def _drop_answer(items):
    items[3].pop("answer")
    return items[3]["id"]


def _duplicate_id(items):
    items[3]["id"] = items[4]["id"]
    return items[3]["id"]


def _unknown_split(items):
    items[3]["meta"]["split"] = "holdout"
    return items[3]["id"]


def _missing_split(items):
    items[3]["meta"].pop("split")
    return items[3]["id"]


@pytest.mark.parametrize(
    ("mutate", "args", "expected"),
    [
        (_drop_answer, [], ["items.jsonl", "field 'answer'"]),
        (_duplicate_id, [], ["items.jsonl", "duplicate id", "field 'id'"]),
        (
            _unknown_split,
            ["--predefined", "split"],
            ["items.jsonl", "field 'meta.split'", "holdout"],
        ),
        (_missing_split, ["--predefined", "split"], ["items.jsonl", "field 'meta.split'"]),
        (lambda items: None, ["--ratios", "0.8", "0.3", "0.1"], ["ratios"]),
        (lambda items: None, ["--strata", "domian"], ["domian"]),
    ],
)
def test_split_cli_errors(tmp_path, capsys, mutate, args, expected):
    items = make_items(split_key="split")
    bad_id = mutate(items)
    src = tmp_path / "items.jsonl"
    io_write_jsonl(src, items)
    out = tmp_path / "out"
    rc, _, err = run_cli(["split", src, "-o", out, *args], capsys)
    assert rc not in (0, None)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kmedqa: error: "), err
    for text in expected + ([f"item {bad_id}"] if bad_id else []):
        assert text in lines[0], (text, lines[0])
    assert not out.exists()


def test_bad_arguments():
    with pytest.raises(ConfigError):
        stratified_split(make_items(), ratios=(0.5, 0.5))
    with pytest.raises(ConfigError):
        write_split(make_items(), "unused", predefined="split", all_test=True)
    items = make_items()
    items.append(dict(items[0]))
    with pytest.raises(InputError, match="duplicate id"):
        stratified_split(items)


def test_config_style_mode_and_key(tmp_path):
    items = make_items(split_key="split")
    a = write_split(items, tmp_path / "a", predefined="split")
    b = write_split(items, tmp_path / "b", mode="predefined", key="split")
    assert a == b and files(tmp_path / "a") == files(tmp_path / "b")
    c = write_split(items, tmp_path / "c", mode="all_test")
    assert c["totals"]["test"] == len(items)
    # an eval-mostly split with a zero val ratio (the demo's KorMedMCQA set)
    d = write_split(
        items, tmp_path / "d", mode="stratified", ratios=[0.1, 0.0, 0.9], strata=["domain"]
    )
    assert d["totals"]["val"] == 0 and d["totals"]["test"] > d["totals"]["train"] > 0
    with pytest.raises(ConfigError):
        write_split(items, tmp_path / "e", mode="predefined")
    with pytest.raises(ConfigError):
        write_split(items, tmp_path / "e", mode="random")
    assert not (tmp_path / "e").exists()
