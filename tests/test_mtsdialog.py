"""MTS-Dialog loader: real files (../shared/data/mts-dialog) and bad-input fixtures."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from kmedqa.data.mtsdialog import SECTION_CODES, load_mtsdialog
from kmedqa.errors import InputError
from kmedqa.items import validate_item

MTS_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mts-dialog"
needs_mts = pytest.mark.skipif(
    not MTS_DIR.is_dir(), reason=f"MTS-Dialog not found at {MTS_DIR} (../shared/data/mts-dialog)"
)
TRAIN = "MTS-Dialog-TrainingSet.csv"
TEST = "MTS-Dialog-TestSet-1-MEDIQA-Chat-2023.csv"


@pytest.fixture(scope="module")
def mts_items():
    return load_mtsdialog(MTS_DIR)


@needs_mts
def test_real_counts_splits_and_ids(mts_items):
    by_split = {}
    for it in mts_items:
        validate_item(it)
        by_split.setdefault(it["meta"]["split"], []).append(it)
    assert {k: len(v) for k, v in by_split.items()} == {"train": 1201, "val": 100, "test": 200}
    ids = [it["id"] for it in mts_items]
    assert len(set(ids)) == len(ids) == 1501
    assert by_split["test"][0]["id"] == "mtsdialog-test-0"
    assert by_split["train"][-1]["id"] == "mtsdialog-train-1200"
    assert by_split["val"][0]["meta"]["source_file"] == "MTS-Dialog-ValidationSet.csv"
    assert len(load_mtsdialog(MTS_DIR, split="val")) == 100


@needs_mts
def test_real_all_20_codes_and_answer_format(mts_items):
    assert len(SECTION_CODES) == 20
    train = [it for it in mts_items if it["meta"]["split"] == "train"]
    assert {it["domain"] for it in train} == set(SECTION_CODES)
    assert {it["domain"] for it in mts_items} == set(SECTION_CODES)
    for it in mts_items:
        assert it["dataset"] == "mtsdialog"
        assert it["task"] == it["q_type"] == "section_summary"
        assert it["options"] is None and it["answer_index"] is None
        code, sep, text = it["answer"].partition("#")
        assert sep and code == it["domain"].upper() and text == it["meta"]["section_text"]
        assert it["meta"]["section_header"] == it["domain"]
    first_test = next(it for it in mts_items if it["id"] == "mtsdialog-test-0")
    assert first_test["answer"].startswith("GENHX#The patient is a 55-year-old")
    fam = [it for it in mts_items if it["domain"] == "fam/sochx"]
    assert fam and all(it["answer"].startswith("FAM/SOCHX#") for it in fam)


@needs_mts
def test_real_multiline_dialogues_intact():
    pd = pytest.importorskip("pandas")
    items = load_mtsdialog(MTS_DIR / TRAIN)  # split from the file name
    assert len(items) == 1201 and items[0]["meta"]["split"] == "train"
    frame = pd.read_csv(MTS_DIR / TRAIN, dtype=str, keep_default_na=False)
    assert len(frame) == len(items)
    for it, (_, row) in zip(items, frame.iterrows(), strict=True):
        assert it["id"] == f"mtsdialog-train-{row['ID']}"
        assert it["question"] == row["dialogue"].replace("\r\n", "\n").strip()
        assert it["meta"]["section_text"] == row["section_text"].strip()
    first = items[0]["question"]
    assert first.startswith("Doctor: What brings you back into the clinic today, miss?")
    assert "\nPatient: I came in for a refill of my blood pressure medicine." in first
    assert "\r" not in first
    assert sum("\n" in it["question"] for it in items) >= 1199


@needs_mts
def test_real_single_file_needs_split_when_renamed(tmp_path):
    copy = tmp_path / "renamed.csv"
    copy.write_bytes((MTS_DIR / TEST).read_bytes())
    with pytest.raises(InputError, match="pass --split .* or set datasets.<name>.split_of_file"):
        load_mtsdialog(copy)
    items = load_mtsdialog(copy, split="test")
    assert len(items) == 200
    assert items[0]["id"] == "mtsdialog-renamed-0"  # the file names the ids: no collision


def _write(path: Path, rows, header=("ID", "section_header", "section_text", "dialogue")):
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_fixture_multiline_quoted_fields(tmp_path):
    dialogue = (
        'Doctor: Any allergies, "seasonal" or otherwise?\r\nPatient: No.\r\n\r\nDoctor: Good.'
    )
    f = _write(
        tmp_path / "mini.csv",
        [
            ["7", "Allergy", "No known allergies.", dialogue],
            ["8", " fam/sochx ", "Smokes, 1 ppd.", "D: x\nP: y"],
        ],
    )
    items = load_mtsdialog(f, split="train")
    assert [it["id"] for it in items] == ["mtsdialog-mini-7", "mtsdialog-mini-8"]
    assert items[0]["question"] == dialogue.replace("\r\n", "\n")
    assert items[0]["question"].count("\n") == 3
    assert items[0]["answer"] == "ALLERGY#No known allergies."
    assert items[1]["domain"] == "fam/sochx" and items[1]["answer"] == "FAM/SOCHX#Smokes, 1 ppd."
    assert items[1]["meta"] == {
        "split": "train",
        "source_file": "mini.csv",
        "source_id": "8",
        "row": 2,
        "section_header": "fam/sochx",
        "section_text": "Smokes, 1 ppd.",
    }


@pytest.mark.parametrize(
    ("rows", "header", "item", "field", "message"),
    [
        (
            [["7", "GENHX", "text", "D: hi"]],
            ("ID", "section_header", "dialogue"),
            None,
            "section_text",
            "missing column",
        ),
        ([["7", "GENHX", "text", "  \n "]], None, "7", "dialogue", "empty"),
        ([["7", "GENHX", "", "D: hi"]], None, "7", "section_text", "empty"),
        (
            [["7", "SOCIALHX", "text", "D: hi"]],
            None,
            "7",
            "section_header",
            "unknown section header",
        ),
        (
            [["7", "GENHX", "a", "D: hi"], ["7", "CC", "b", "D: ho"]],
            None,
            "7",
            "ID",
            "duplicate ID",
        ),
        ([["", "GENHX", "a", "D: hi"]], None, "row 1", "ID", "empty ID"),
        ([["7", "GENHX", "a"]], None, "7", "dialogue", "missing cell"),
    ],
)
def test_bad_inputs_one_line(tmp_path, rows, header, item, field, message):
    f = tmp_path / "bad.csv"
    if header is None:
        _write(f, rows)
    else:
        _write(f, [r[: len(header)] for r in rows], header)
    with pytest.raises(InputError) as exc:
        load_mtsdialog(f, split="test")
    text = str(exc.value)
    assert "\n" not in text
    assert str(f) in text
    assert f"field '{field}'" in text
    assert message in text
    if item is not None:
        assert f"item {item}" in text
    assert exc.value.field == field and exc.value.file == str(f)


def test_bad_paths(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_mtsdialog(tmp_path / "nope.csv", split="train")
    with pytest.raises(InputError, match="MTS-Dialog-TrainingSet.csv not found"):
        load_mtsdialog(tmp_path)
    with pytest.raises(InputError, match="unknown split"):
        load_mtsdialog(tmp_path, split="dev")
