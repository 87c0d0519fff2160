"""KorMedMCQA loader: CSV / JSONL / JSON / parquet, directories, splits, one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers.cli import run_cli

from kmedqa.data.kormedmcqa import load_kormedmcqa, split_from_name
from kmedqa.errors import ConfigError, InputError

COLUMNS = [
    "subject",
    "year",
    "period",
    "q_number",
    "question",
    "A",
    "B",
    "C",
    "D",
    "E",
    "answer",
    "cot",
]


def row(q_number=1, answer=3, e="디곡신", year=2020, period=1, **over):
    r = {
        "subject": "doctor",
        "year": year,
        "period": period,
        "q_number": q_number,
        "question": f"시험 문제 {q_number}번의 본문이다. 가장 적절한 것은?",
        "A": "메트포르민",
        "B": "와파린",
        "C": "아달리무맙",
        "D": "푸로세미드",
        "E": e,
        "answer": answer,
        "cot": "",
    }
    r.update(over)
    return r


ROWS = [row(1), row(2, answer=1), row(3, answer=4, e=""), row(1, period=2, answer=5)]


def write_csv(path: Path, rows, columns=COLUMNS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def write_parquet(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def without_source(items):
    return [
        {**it, "meta": {k: v for k, v in it["meta"].items() if k != "source_file"}} for it in items
    ]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "parquet"])
def test_formats_give_the_same_items(tmp_path, fmt):
    path = tmp_path / f"doctor.{fmt}"
    if fmt == "csv":
        write_csv(path, ROWS)
    elif fmt == "jsonl":
        write_jsonl(path, ROWS)
    elif fmt == "json":
        path.write_text(json.dumps(ROWS, ensure_ascii=False), encoding="utf-8")
    else:
        write_parquet(path, ROWS)
    items = load_kormedmcqa(path, exam="doctor")
    reference = load_kormedmcqa(write_csv(tmp_path / "ref" / "doctor.csv", ROWS))
    assert without_source(items) == without_source(reference)
    ids = [it["id"] for it in items]
    assert ids == [f"kormedmcqa-doctor-2020-{n}" for n in ("1-1", "1-2", "1-3", "2-1")]
    first = items[0]
    assert first["dataset"] == "kormedmcqa" and first["task"] == "mcq"
    assert first["domain"] == "doctor" and first["q_type"] == "객관식"
    assert first["question"] == "시험 문제 1번의 본문이다. 가장 적절한 것은?"
    assert first["options"] == ["메트포르민", "와파린", "아달리무맙", "푸로세미드", "디곡신"]
    assert first["answer_index"] == 2 and first["answer"] == "C. 아달리무맙"
    assert first["meta"] == {
        "subject": "doctor",
        "year": 2020,
        "period": 1,
        "q_number": 1,
        "split": "test",
        "source_file": path.name,
    }
    four = items[2]
    assert four["options"] == [
        "메트포르민",
        "와파린",
        "아달리무맙",
        "푸로세미드",
    ]  # empty E dropped
    assert four["answer"] == "D. 푸로세미드"
    assert items[3]["answer"] == "E. 디곡신"


def test_directory_picks_exam_and_split(tmp_path):
    d = tmp_path / "kmmcqa"
    write_csv(d / "doctor-train.csv", [row(1), row(2)])
    write_csv(d / "doctor-test.csv", [row(3), row(4)])
    write_parquet(d / "doctor" / "dev-00000-of-00001.parquet", [row(5)])
    write_csv(d / "nurse-test.csv", [row(9, subject="nurse")])
    items = load_kormedmcqa(d, exam="doctor")
    assert [it["meta"]["split"] for it in items] == ["train", "train", "test", "test", "dev"]
    test_only = load_kormedmcqa(d, exam="doctor", split="test")
    assert [it["meta"]["q_number"] for it in test_only] == [3, 4]
    assert [
        it["meta"]["split"] for it in load_kormedmcqa(d, exam="doctor", split="validation")
    ] == ["dev"]
    nurse = load_kormedmcqa(d, exam="nurse")
    assert [it["id"] for it in nurse] == ["kormedmcqa-nurse-2020-1-9"] and nurse[0][
        "domain"
    ] == "nurse"
    with pytest.raises(InputError, match="no dentist files"):
        load_kormedmcqa(d, exam="dentist")


def test_split_names_and_bad_arguments(tmp_path):
    assert split_from_name(Path("doctor-train.csv")) == "train"
    assert split_from_name(Path("doctor/fewshot-00000-of-00001.parquet")) == "fewshot"
    assert split_from_name(Path("doctor.csv")) is None
    path = write_csv(tmp_path / "doctor.csv", ROWS)
    with pytest.raises(ConfigError):
        load_kormedmcqa(path, exam="vet")
    with pytest.raises(ConfigError):
        load_kormedmcqa(path, split="holdout")
    with pytest.raises(InputError, match="no doctor rows"):
        load_kormedmcqa(path, split="train")


def test_duplicate_ids_are_made_unique(tmp_path):
    path = write_csv(tmp_path / "doctor-test.csv", [row(1), row(1, answer=2)])
    items = load_kormedmcqa(path)
    assert [it["id"] for it in items] == [
        "kormedmcqa-doctor-2020-1-1",
        "kormedmcqa-doctor-2020-1-1-2",
    ]
    assert items[1]["meta"]["id_suffix"] == 2


def test_prepare_cli_writes_items(tmp_path, capsys):
    path = write_csv(tmp_path / "doctor-test.csv", ROWS)
    out = tmp_path / "items.jsonl"
    rc, _, err = run_cli(
        ["prepare", "kormedmcqa", path, "--exam", "doctor", "--split", "test", "-o", out], capsys
    )
    assert rc == 0, err
    assert len(out.read_text(encoding="utf-8").splitlines()) == 4


BAD_ROWS = {
    "answer out of range": (
        [row(1), row(2, answer=6)],
        ["row 2", "kormedmcqa-doctor-2020-1-2", "field 'answer'"],
    ),
    "answer not a number": ([row(1, answer="셋")], ["row 1", "field 'answer'"]),
    "answer names empty E": ([row(1, answer=5, e="")], ["row 1", "field 'answer'", "empty"]),
    "empty option": (
        [row(1), row(2), row(3, B="  ")],
        ["row 3", "kormedmcqa-doctor-2020-1-3", "field 'B'"],
    ),
    "empty question": ([row(1, question="")], ["row 1", "field 'question'"]),
    "year not a number": ([row(1, year="작년")], ["row 1", "field 'year'"]),
    "missing q_number": ([row(q_number="")], ["row 1", "field 'q_number'"]),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_rows_fail_with_one_line(case, tmp_path, capsys):
    rows, expected = BAD_ROWS[case]
    path = write_csv(tmp_path / "doctor-test.csv", rows)
    out = tmp_path / "items.jsonl"
    rc, _, err = run_cli(["prepare", "kormedmcqa", path, "-o", out], capsys)
    assert rc not in (0, None)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kmedqa: error: "), err
    for text in ["doctor-test.csv", *expected]:
        assert text in lines[0], (text, lines[0])
    assert not out.exists()


def test_missing_column(tmp_path, capsys):
    path = write_csv(tmp_path / "doctor.csv", ROWS, columns=[c for c in COLUMNS if c != "answer"])
    out = tmp_path / "items.jsonl"
    rc, _, err = run_cli(["prepare", "kormedmcqa", path, "-o", out], capsys)
    assert rc not in (0, None)
    assert (
        "doctor.csv" in err
        and "row 1" in err
        and "field 'answer'" in err
        and "missing column" in err
    )
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_bad_parquet_and_json(tmp_path):
    bad = tmp_path / "doctor.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match="parquet"):
        load_kormedmcqa(bad)
    bad_json = tmp_path / "doctor.json"
    bad_json.write_text('{"rows": 1}', encoding="utf-8")
    with pytest.raises(InputError, match="JSON list"):
        load_kormedmcqa(bad_json)
