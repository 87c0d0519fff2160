"""Generic instruction data loader: JSON list and JSON lines, good and bad records."""

from __future__ import annotations

import json

import pytest

from kmedqa.data.instruct import SHORT_ANSWER_MAX_CHARS, load_instruct
from kmedqa.errors import InputError
from kmedqa.items import validate_item

RECORDS = [
    {
        "id": "c1",
        "instruction": "환자의 질문에 의사로서 답하세요.",
        "question": "아이가 열이 38.5도인데 해열제를 먹여도 되나요?",
        "answer": "네, 아세트아미노펜이나 이부프로펜을 체중에 맞는 용량으로 먹일 수 있습니다. "
        "다만 생후 3개월 미만이거나 열이 3일 넘게 지속되면 진료를 받으세요.",
        "domain": "pediatrics",
        "source": "consult-site",
    },
    {"question": "Is 5 mg of amlodipine a starting dose?", "answer": "Yes.", "instruction": ""},
]


def _jsonl(path, records):
    path.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n\n", encoding="utf-8"
    )
    return path


def test_json_and_jsonl_give_the_same_items(tmp_path):
    a = tmp_path / "qa.json"
    a.write_text(json.dumps(RECORDS, ensure_ascii=False, indent=1), encoding="utf-8")
    b = _jsonl(tmp_path / "qa.jsonl", RECORDS)
    items_a = load_instruct(a, "consult")
    items_b = load_instruct(b, "consult")
    strip = [{k: v for k, v in it.items() if k != "meta"} for it in items_a]
    assert strip == [{k: v for k, v in it.items() if k != "meta"} for it in items_b]
    for it in items_a:
        validate_item(it)


def test_mapping(tmp_path):
    items = load_instruct(_jsonl(tmp_path / "qa.jsonl", RECORDS), "consult")
    first, second = items
    assert first["id"] == "consult-c1"
    assert first["dataset"] == "consult"
    assert first["question"] == RECORDS[0]["instruction"] + "\n\n" + RECORDS[0]["question"]
    assert first["answer"] == RECORDS[0]["answer"]
    assert first["task"] == first["q_type"] == "descriptive"
    assert first["domain"] == "pediatrics"
    assert first["options"] is None and first["answer_index"] is None
    assert first["meta"]["source_file"] == "qa.jsonl" and first["meta"]["row"] == 1
    assert first["meta"]["instruction"] == RECORDS[0]["instruction"]
    assert first["meta"]["input_question"] == RECORDS[0]["question"]
    assert first["meta"]["fields"] == {"source": "consult-site"}
    # no id: a stable content hash; empty instruction: question as is
    assert second["id"].startswith("consult-") and len(second["id"]) == len("consult-") + 16
    assert second["question"] == RECORDS[1]["question"]
    assert second["task"] == "short" and second["domain"] is None
    # same content, other file and position -> same id
    again = load_instruct(_jsonl(tmp_path / "other.jsonl", [{"x": 1, **RECORDS[1]}]), "consult")
    assert again[0]["id"] == second["id"]
    changed = load_instruct(
        _jsonl(tmp_path / "c.jsonl", [{**RECORDS[1], "answer": "No."}]), "consult"
    )
    assert changed[0]["id"] != second["id"]


def test_task_rule_and_override(tmp_path):
    recs = [
        {"id": 1, "question": "q1", "answer": "x" * SHORT_ANSWER_MAX_CHARS},
        {"id": 2, "question": "q2", "answer": "x" * (SHORT_ANSWER_MAX_CHARS + 1)},
        {"id": 3, "question": "q3", "answer": "two\nlines"},
        {"id": 4, "question": "q4", "answer": "a", "q_type": "dosage"},
    ]
    f = _jsonl(tmp_path / "t.jsonl", recs)
    assert [it["task"] for it in load_instruct(f, "d")] == [
        "short",
        "descriptive",
        "descriptive",
        "short",
    ]
    assert load_instruct(f, "d")[3]["q_type"] == "dosage"
    assert {it["task"] for it in load_instruct(f, "d", task="descriptive")} == {"descriptive"}
    assert [it["id"] for it in load_instruct(f, "d")] == ["d-1", "d-2", "d-3", "d-4"]


@pytest.mark.parametrize(
    ("content", "item", "field", "message"),
    [
        ('{"id": "a", "question": "q"}\n', "a", "answer", "missing"),
        ('{"id": "a", "question": "  ", "answer": "x"}\n', "a", "question", "empty"),
        ('{"question": ["q"], "answer": "x"}\n', "row 1", "question", "must be text"),
        (
            '{"id": "a", "question": "q", "answer": "x", "domain": 3}\n',
            "a",
            "domain",
            "must be text",
        ),
        (
            '{"id": "a", "question": "q", "answer": "x"}\n{"id": "a", "question": "p", "answer": "y"}\n',
            "a",
            "id",
            "duplicate id",
        ),
        (
            '{"question": "q", "answer": "x"}\n{"question": "q", "answer": "x"}\n',
            "row 2",
            "question",
            "duplicate",
        ),
        (
            '{"id": true, "question": "q", "answer": "x"}\n',
            "row 1",
            "id",
            "non-empty text or an integer",
        ),
        ('[{"id": "a", "question": "q", "answer": "x"}, 5]', "row 2", None, "not an object"),
        (
            '{"id": "a", "question": "q", "answer": "x"}\n{"id": "b", "question": \n',
            None,
            None,
            "line 2 is not valid JSON",
        ),
        ('[{"id": "a", "question": "q"', None, None, "not valid JSON"),
        ("  \n", None, None, "empty"),
        ("[]", None, None, "no records"),
    ],
)
def test_bad_records(tmp_path, content, item, field, message):
    f = tmp_path / "bad.jsonl"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_instruct(f, "d")
    text = str(exc.value)
    assert "\n" not in text and str(f) in text and message in text
    if item is not None:
        assert f"item {item}" in text
    if field is not None:
        assert f"field '{field}'" in text


def test_drop_duplicates_keeps_first(tmp_path):
    f = _jsonl(tmp_path / "d.jsonl", [RECORDS[1], RECORDS[0], RECORDS[1]])
    items = load_instruct(f, "d", drop_duplicates=True)
    assert len(items) == 2 and items[0]["meta"]["row"] == 1


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_instruct(tmp_path / "none.json", "d")
