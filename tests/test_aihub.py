"""AI Hub 71875 loader: zips and extracted folders, and one-line errors for bad input."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from helpers.cli import run_cli

from kmedqa.data.aihub import load_aihub, parse_answer_index, parse_options
from kmedqa.errors import InputError
from kmedqa.io import read_jsonl

LABELS = "02.라벨링데이터"
MCQ_Q = "크론병 치료에 쓰이는 TNF-α 억제제는?\n1) 메트포르민\n2) 와파린\n3) 아달리무맙\n4) 디곡신\n5) 푸로세미드"


def rec(qa_id=1, domain=17, q_type=1, question=MCQ_Q, answer="3) 아달리무맙", **extra):
    return {
        "qa_id": qa_id,
        "domain": domain,
        "q_type": q_type,
        "question": question,
        "answer": answer,
        **extra,
    }


GOOD_TRAIN = [
    rec(101),
    rec(102, 14, 2, "임신성 당뇨병 선별검사 시기는?", "임신 24~28주"),
    rec(
        103,
        16,
        3,
        "아나필락시스의 초기 처치를 설명하시오.",
        "에피네프린을 근육주사한다. 반응이 없으면 반복한다.",
    ),
    rec(
        104,
        "15",
        "1",
        "크룹의 원인은?\n1) RSV\n2) 파라인플루엔자바이러스\n3) 대장균\n4) 로타바이러스\n5) HHV-6",
        "2) 파라인플루엔자바이러스",
    ),
]
GOOD_VAL = [rec(201, 17, 2, "메트포르민의 계열은?", "비구아나이드계")]


def write_zip(path: Path, members: dict[str, object], compression=zipfile.ZIP_DEFLATED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, obj in members.items():
            data = obj if isinstance(obj, bytes) else json.dumps(obj, ensure_ascii=False).encode()
            zf.writestr(name, data)
    return path


def make_download(root: Path, train=GOOD_TRAIN, val=GOOD_VAL) -> Path:
    write_zip(
        root / "1.데이터/Training" / LABELS / "TL_내과.zip",
        {f"{r['qa_id']}.json": r for r in train},
    )
    write_zip(
        root / "1.데이터/Validation" / LABELS / "VL_내과.zip",
        {f"{r['qa_id']}.json": r for r in val},
    )
    return root


# --------------------------------------------------------------------------- good input


def test_load_from_zips(tmp_path):
    items = load_aihub(make_download(tmp_path / "dl"))
    ids = [it["id"] for it in items]
    assert ids == ["aihub-101", "aihub-102", "aihub-103", "aihub-104", "aihub-201"]
    mcq = items[0]
    assert mcq["dataset"] == "aihub71875" and mcq["task"] == "mcq"
    assert mcq["domain"] == "내과" and mcq["q_type"] == "객관식"
    assert mcq["question"] == MCQ_Q
    assert mcq["options"] == ["메트포르민", "와파린", "아달리무맙", "디곡신", "푸로세미드"]
    assert mcq["answer"] == "3) 아달리무맙" and mcq["answer_index"] == 2
    assert mcq["meta"] == {
        "source_split": "Training",
        "source_file": "TL_내과.zip/101.json",
        "qa_id": 101,
    }
    short, desc, peds, val = items[1:]
    assert (
        short["task"],
        short["domain"],
        short["q_type"],
        short["options"],
        short["answer_index"],
    ) == ("short", "산부인과", "단답형", None, None)
    assert (desc["task"], desc["domain"], desc["q_type"]) == ("descriptive", "응급의학과", "서술형")
    assert (peds["domain"], peds["answer_index"]) == ("소아청소년과", 1)  # codes given as strings
    assert val["meta"]["source_split"] == "Validation"


def test_load_from_extracted_folders(tmp_path):
    root = tmp_path / "ex"
    nested = root / "Training" / LABELS / "TL_내과" / "sub"
    nested.mkdir(parents=True)
    (nested / "101.json").write_text(
        json.dumps(GOOD_TRAIN[0], ensure_ascii=False), encoding="utf-8"
    )
    (nested / "list.json").write_text(
        json.dumps(GOOD_TRAIN[1:3], ensure_ascii=False), encoding="utf-8"
    )
    (nested / "data.json").write_bytes(  # a {"data": [...]} container with a UTF-8 BOM
        b"\xef\xbb\xbf" + json.dumps({"data": [GOOD_TRAIN[3]]}, ensure_ascii=False).encode()
    )
    val = root / "Validation" / LABELS / "VL_내과"
    val.mkdir(parents=True)
    (val / "201.json").write_text(json.dumps(GOOD_VAL[0], ensure_ascii=False), encoding="utf-8")
    from_dirs = load_aihub(root)
    from_zips = load_aihub(make_download(tmp_path / "dl"))

    def strip(items):
        return [
            {**it, "meta": {k: v for k, v in it["meta"].items() if k != "source_file"}}
            for it in items
        ]

    assert strip(from_dirs) == strip(from_zips)
    assert from_dirs[0]["meta"]["source_file"] == "Training/02.라벨링데이터/TL_내과/sub/101.json"


def test_extracted_copy_next_to_zip_is_not_read_twice(tmp_path):
    root = make_download(tmp_path / "dl")
    copy = root / "1.데이터/Training" / LABELS / "TL_내과"
    copy.mkdir()
    (copy / "101.json").write_text(json.dumps(GOOD_TRAIN[0]), encoding="utf-8")
    assert len(load_aihub(root)) == 5


def test_single_zip_and_source_data_skipped(tmp_path):
    root = make_download(tmp_path / "dl")
    write_zip(root / "1.데이터/Training/01.원천데이터/TS_내과.zip", {"x.json": b"not json at all"})
    assert len(load_aihub(root)) == 5
    one = load_aihub(root / "1.데이터/Validation" / LABELS / "VL_내과.zip")
    assert [it["id"] for it in one] == ["aihub-201"] and one[0]["meta"][
        "source_split"
    ] == "Validation"


@pytest.mark.parametrize(
    ("question", "options"),
    [
        ("Q?\n1) a\n2) b\n3) c", ["a", "b", "c"]),
        ("Q? 1) a 2) b 3) c 4) d 5) e", ["a", "b", "c", "d", "e"]),
        ("Q?\n① a\n② b\n③ c", ["a", "b", "c"]),
        ("Q?\n1. a\n2. b", ["a", "b"]),
        (
            "다음 설명 중\n1) 서술 하나\n2) 서술 둘\n보기에서 고르시오.\n1) a\n2) b\n3) c\n4) d",
            ["a", "b", "c", "d"],
        ),
        ("Q?\n1) a line\ncontinued\n2) b", ["a line continued", "b"]),
    ],
)
def test_parse_options(question, options):
    parsed = parse_options(question)
    assert parsed is not None and parsed[1] == options


@pytest.mark.parametrize(
    ("answer", "index"),
    [
        ("3) 아달리무맙", 2),
        ("3번", 2),
        ("③", 2),
        ("3)", 2),
        ("정답: 3) 아달리무맙", 2),
        ("아달리무맙", 2),
        ("5) 푸로세미드.", 4),
    ],
)
def test_parse_answer_index(answer, index):
    assert (
        parse_answer_index(answer, ["메트포르민", "와파린", "아달리무맙", "디곡신", "푸로세미드"])
        == index
    )


def test_answer_text_must_match_option():
    with pytest.raises(ValueError, match="does not match option 2"):
        parse_answer_index("2) 아달리무맙", ["메트포르민", "와파린", "아달리무맙"])


# --------------------------------------------------------------------------- bad input


def _truncated(root: Path) -> str:
    path = make_download(root) / "1.데이터/Training" / LABELS / "TL_내과.zip"
    path.write_bytes(path.read_bytes()[:120])
    return "TL_내과.zip"


def _bad_crc(root: Path) -> str:
    make_download(root)
    path = root / "1.데이터/Training" / LABELS / "TL_내과.zip"
    write_zip(path, {"101.json": GOOD_TRAIN[0]}, compression=zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    pos = data.index("아달리무맙".encode())
    data[pos + 3] ^= 0x01  # same length, different content: the CRC check fails on read
    path.write_bytes(bytes(data))
    return "TL_내과.zip/101.json"


def _members(*members: tuple[str, object]):
    def build(root: Path) -> None:
        make_download(root, train=[])
        write_zip(root / "1.데이터/Training" / LABELS / "TL_내과.zip", dict(members))

    return build


def _drop(key):
    r = rec(7)
    del r[key]
    return r


BAD_CASES = {
    "truncated zip": (_truncated, ["TL_내과.zip", "zip"]),
    "bad crc": (_bad_crc, ["TL_내과.zip/101.json"]),
    "not json": (_members(("7.json", b"{qa_id: 7,")), ["TL_내과.zip/7.json", "not valid JSON"]),
    "not utf-8": (_members(("7.json", "질문".encode("cp949"))), ["TL_내과.zip/7.json", "UTF-8"]),
    "missing answer": (
        _members(("7.json", _drop("answer"))),
        ["TL_내과.zip/7.json", "aihub-7", "field 'answer'"],
    ),
    "missing domain": (
        _members(("7.json", _drop("domain"))),
        ["7.json", "aihub-7", "field 'domain'"],
    ),
    "missing qa_id": (
        _members(("7.json", _drop("qa_id"))),
        ["TL_내과.zip/7.json", "field 'qa_id'"],
    ),
    "empty question": (
        _members(("7.json", rec(7, question="  "))),
        ["7.json", "aihub-7", "field 'question'"],
    ),
    "numeric answer": (
        _members(("7.json", rec(7, answer=3))),
        ["7.json", "aihub-7", "field 'answer'", "number"],
    ),
    "list answer": (
        _members(("7.json", rec(7, answer=["3"]))),
        ["7.json", "aihub-7", "field 'answer'", "list"],
    ),
    "null answer": (
        _members(("7.json", rec(7, answer=None))),
        ["7.json", "aihub-7", "field 'answer'", "null"],
    ),
    "unknown domain": (
        _members(("7.json", rec(7, domain=99))),
        ["7.json", "aihub-7", "field 'domain'", "99"],
    ),
    "unknown q_type": (
        _members(("7.json", rec(7, q_type=4))),
        ["7.json", "aihub-7", "field 'q_type'", "4"],
    ),
    "bad code text": (
        _members(("7.json", rec(7, q_type="mcq"))),
        ["7.json", "aihub-7", "field 'q_type'"],
    ),
    "no options": (
        _members(("7.json", rec(7, question="보기가 없는 질문?"))),
        ["7.json", "aihub-7", "field 'question'"],
    ),
    "answer without number": (
        _members(("7.json", rec(7, answer="인슐린"))),
        ["7.json", "aihub-7", "field 'answer'"],
    ),
    "answer out of range": (
        _members(("7.json", rec(7, answer="7) 인슐린"))),
        ["7.json", "aihub-7", "field 'answer'", "7"],
    ),
    "answer text mismatch": (
        _members(("7.json", rec(7, answer="2) 아달리무맙"))),
        ["7.json", "aihub-7", "field 'answer'"],
    ),
    "duplicate qa_id": (
        _members(("a.json", rec(7)), ("b.json", rec(7))),
        ["TL_내과.zip/b.json", "aihub-7", "field 'qa_id'", "a.json"],
    ),
    "record not object": (_members(("7.json", [1, 2])), ["7.json", "JSON object"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_fails_with_one_line_and_no_output(case, tmp_path, capsys):
    build, expected = BAD_CASES[case]
    root = tmp_path / "dl"
    build(root)
    out = tmp_path / "items.jsonl"
    rc, stdout, err = run_cli(["prepare", "aihub", root, "-o", out], capsys)
    assert rc not in (0, None)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kmedqa: error: ")
    assert "Traceback" not in err
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert not out.exists()
    assert not list(tmp_path.glob(".items.jsonl*"))


def test_missing_root(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_aihub(tmp_path / "nope")


def test_empty_root(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no AI Hub label"):
        load_aihub(tmp_path / "empty")


def test_prepare_writes_canonical_items(tmp_path, capsys):
    root = make_download(tmp_path / "dl")
    out = tmp_path / "items.jsonl"
    rc, _, err = run_cli(["prepare", "aihub", root, "-o", out], capsys)
    assert rc == 0, err
    first = out.read_bytes()
    assert [r["id"] for r in read_jsonl(out)][0] == "aihub-101"
    run_cli(["prepare", "aihub", root, "-o", out], capsys)
    assert out.read_bytes() == first


def test_installed_entry_point_prints_one_line(tmp_path):
    """The real ``kmedqa`` script: exit status 2, one line on stderr, no traceback, no output."""
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "kmedqa"
    if not exe.exists():
        pytest.skip("kmedqa entry point not installed next to this interpreter")
    root = tmp_path / "dl"
    _members(("7.json", rec(7, domain=99)))(root)
    out = tmp_path / "items.jsonl"
    proc = subprocess.run(
        [str(exe), "prepare", "aihub", str(root), "-o", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert (
        "TL_내과.zip/7.json" in proc.stderr
        and "aihub-7" in proc.stderr
        and "field 'domain'" in proc.stderr
    )
    assert not out.exists()


def test_cp949_member_names_are_decoded(tmp_path):
    path = tmp_path / "Training" / "TL_내과.zip"
    path.parent.mkdir(parents=True)
    cp949 = "내과_101.json".encode("cp949")
    placeholder = b"X" * (len(cp949) - len(b"_101.json")) + b"_101.json"
    with zipfile.ZipFile(path, "w") as zf:  # an ASCII name, then its bytes swapped for cp949
        zf.writestr(placeholder.decode(), json.dumps(GOOD_TRAIN[0]).encode())
    path.write_bytes(path.read_bytes().replace(placeholder, cp949))
    with zipfile.ZipFile(path) as zf:
        assert not zf.infolist()[0].flag_bits & 0x800  # stored without the UTF-8 flag
    items = load_aihub(tmp_path)
    assert items[0]["meta"]["source_file"] == "TL_내과.zip/내과_101.json"
