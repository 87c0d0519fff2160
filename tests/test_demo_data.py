"""The illustrative demo data: deterministic, the intended mix, and loadable."""

from __future__ import annotations

import csv
import json
import re
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from kmedqa.data.aihub import load_aihub
from kmedqa.data.demo import (
    KORMEDMCQA_COLUMNS,
    write_aihub_demo,
    write_demo_data,
    write_kormedmcqa_demo,
)
from kmedqa.data.korean import particle
from kmedqa.data.kormedmcqa import load_kormedmcqa
from kmedqa.items import validate_item


def run_cli(argv, capsys):
    from kmedqa.cli import main

    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # one_line_errors / argparse
        rc = exc.code
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    write_demo_data(out, seed=42)
    return out


@pytest.fixture(scope="module")
def demo_items(demo_dir) -> list[dict]:
    return load_aihub(demo_dir / "aihub71875")


def test_demo_is_byte_identical_across_runs(tmp_path, demo_dir):
    write_demo_data(tmp_path / "again", seed=42)
    first, second = tree_bytes(demo_dir), tree_bytes(tmp_path / "again")
    assert first.keys() == second.keys()
    assert first == second
    zips = [k for k in first if k.endswith(".zip")]
    assert len(zips) == 8  # TL_ and VL_ for 4 departments


def test_other_seed_gives_other_data(tmp_path, demo_dir):
    write_aihub_demo(tmp_path / "s7", seed=7)
    zip42 = demo_dir / "aihub71875/1.데이터/Training/02.라벨링데이터/TL_내과.zip"
    zip7 = tmp_path / "s7/1.데이터/Training/02.라벨링데이터/TL_내과.zip"
    assert zip42.read_bytes() != zip7.read_bytes()


def test_layout_and_readme(demo_dir):
    root = demo_dir / "aihub71875"
    for dept in ("내과", "산부인과", "소아청소년과", "응급의학과"):
        assert (root / "1.데이터/Training/02.라벨링데이터" / f"TL_{dept}.zip").is_file()
        assert (root / "1.데이터/Validation/02.라벨링데이터" / f"VL_{dept}.zip").is_file()
    assert (
        "illustrative demo data written by kmedqa, not ai hub data"
        in (root / "README.txt").read_text().lower()
    )
    assert "not kormedmcqa data" in (demo_dir / "kormedmcqa/README.txt").read_text().lower()


def test_raw_records_follow_the_aihub_label_format(demo_dir):
    path = demo_dir / "aihub71875/1.데이터/Training/02.라벨링데이터/TL_내과.zip"
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert names == sorted(names)
        assert all(info.date_time == (2024, 1, 1, 0, 0, 0) for info in zf.infolist())
        records = [json.loads(zf.read(n)) for n in names]
    for rec in records:
        assert isinstance(rec["qa_id"], int) and rec["domain"] == 17 and rec["q_type"] in (1, 2, 3)
        assert isinstance(rec["question"], str) and isinstance(rec["answer"], str)
        assert rec["illustrative"] is True
        if rec["q_type"] == 1:
            assert all(f"\n{i}) " in rec["question"] for i in range(1, 6))
            assert re.match(r"^[1-5]\) \S", rec["answer"])


def test_counts_and_mix(demo_items):
    n = len(demo_items)
    assert n >= 400
    by_domain = Counter(it["domain"] for it in demo_items)
    by_type = Counter(it["q_type"] for it in demo_items)
    assert set(by_domain) == {"내과", "산부인과", "소아청소년과", "응급의학과"}
    assert abs(by_domain["내과"] / n - 2 / 3) <= 0.1
    assert abs(by_type["객관식"] / n - 0.81) <= 0.07
    assert by_type["단답형"] > 0 and by_type["서술형"] > 0
    val_share = sum(it["meta"]["source_split"] == "Validation" for it in demo_items) / n
    assert 0.05 <= val_share <= 0.15
    for dept in by_domain:  # every department has validation items
        assert any(
            it["domain"] == dept and it["meta"]["source_split"] == "Validation" for it in demo_items
        )


def test_every_item_is_valid_and_distinct(demo_items):
    questions = set()
    for it in demo_items:
        validate_item(it)
        assert it["meta"]["illustrative"] is True
        assert it["question"] not in questions
        questions.add(it["question"])
        if it["task"] == "mcq":
            assert len(it["options"]) == 5 and len(set(it["options"])) == 5
            assert it["answer"] == f"{it['answer_index'] + 1}) {it['options'][it['answer_index']]}"
        elif it["task"] == "short":
            assert it["options"] is None and len(it["answer"]) <= 60
        else:
            sentences = [s for s in re.split(r"(?<=다\.)\s*", it["answer"]) if s.strip()]
            assert 1 <= len(sentences) <= 3


def test_kormedmcqa_demo_csv(tmp_path, demo_items):
    path = tmp_path / "kormedmcqa" / "doctor.csv"
    n = write_kormedmcqa_demo(path, seed=42)
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == KORMEDMCQA_COLUMNS
        rows = list(reader)
    assert n == len(rows) >= 60
    assert {r["subject"] for r in rows} == {"doctor"}
    assert all(r["answer"] in {"1", "2", "3", "4", "5"} and r["cot"] == "" for r in rows)
    items = load_kormedmcqa(path, exam="doctor")
    assert len(items) == n and len({it["id"] for it in items}) == n
    aihub_text = {it["question"].split("\n")[0] for it in demo_items}
    assert not aihub_text & {it["question"] for it in items}
    # same seed, same bytes
    again = tmp_path / "again.csv"
    write_kormedmcqa_demo(again, seed=42)
    assert again.read_bytes() == path.read_bytes()


def test_demo_data_cli(tmp_path, capsys):
    rc, _, err = run_cli(["demo-data", tmp_path / "d", "--seed", "3"], capsys)
    assert rc == 0, err
    assert (tmp_path / "d/aihub71875/README.txt").is_file()
    assert (tmp_path / "d/kormedmcqa/doctor.csv").is_file()
    rc, _, err = run_cli(
        ["prepare", "aihub", tmp_path / "d/aihub71875", "-o", tmp_path / "items.jsonl"], capsys
    )
    assert rc == 0, err
    assert len((tmp_path / "items.jsonl").read_text().splitlines()) >= 400


@pytest.mark.parametrize(
    ("word", "marker", "expected"),
    [
        ("메트포르민", "은", "은"),
        ("와파린", "를", "을"),
        ("살부타몰", "으로", "로"),
        ("병원", "로", "으로"),
        ("혈청 TSH", "은", "는"),
        ("당화혈색소(HbA1c)", "이", "가"),
        ("호흡기세포융합바이러스", "이", "가"),
        ("0.7 미만", "과", "과"),
        ("분당 100~120회", "을", "를"),
    ],
)
def test_korean_particles(word, marker, expected):
    assert particle(word, marker) == expected
