"""The standing hostile-input battery (issue 14): nothing lost, nothing silent.

Every case builds its broken input in ``tmp_path`` and runs one loader or one CLI stage.
A refused input must end with exit status 2 and ONE line on stderr that names the file,
the item (row/line) and the field, with no traceback and no output file. An accepted
input (a declared encoding, NFD folder names, a split given by the caller) must give the
items a user expects, with a warning where something was changed (NUL bytes, duplicate
q_numbers). Real MTS-Dialog (../shared/data/mts-dialog) is read where present, never copied.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import stat
import unicodedata
import zipfile
from pathlib import Path

import pytest
from helpers.cli import run_cli

from kmedqa.errors import ConfigError, InputError
from kmedqa.io import append_jsonl, read_jsonl, read_jsonl_tail_tolerant, write_jsonl
from kmedqa.items import item_sha, make_item

MTS_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mts-dialog"
TS1 = "MTS-Dialog-TestSet-1-MEDIQA-Chat-2023.csv"
TS2 = "MTS-Dialog-TestSet-2-MEDIQA-Sum-2023.csv"
MTS_HEADER = "ID,section_header,section_text,dialogue\n"
LABELS = "02.라벨링데이터"


# --------------------------------------------------------------------------- builders


def mts_csv(path: Path, rows, *, encoding="utf-8") -> Path:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["ID", "section_header", "section_text", "dialogue"])
    w.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


MTS_ROWS = [
    ["0", "GENHX", "The patient is a 55-year-old man.", "Doctor: Hello.\nPatient: Hi, doc."],
    ["1", "CC", "Cough.", "Doctor: What brings you in?\nPatient: A cough."],
    ["2", "ROS", "Negative.", "Doctor: Any pain?\nPatient: No."],
]


def aihub_rec(qa_id, question="임신성 당뇨병 선별검사 시기는?", answer="임신 24~28주"):
    return {"qa_id": qa_id, "domain": 14, "q_type": 2, "question": question, "answer": answer}


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def kmcqa_row(q_number, **over):
    row = {
        "subject": "doctor", "year": 2020, "period": 1, "q_number": q_number,
        "question": f"시험 문제 {q_number}번: 가장 적절한 것은?", "A": "메트포르민",
        "B": "와파린", "C": "아달리무맙", "D": "푸로세미드", "E": "디곡신", "answer": 3,
        "cot": "",
    }  # fmt: skip
    row.update(over)
    return row


def jsonl_bytes(rows, encoding="utf-8") -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode(encoding)


def mts_items(tmp_path: Path, name: str, answers: list[str]) -> Path:
    items = [
        make_item(
            id=f"mtsdialog-test-{i}", dataset="mtsdialog", task="section_summary", domain="genhx",
            q_type="section_summary", question=f"Doctor: visit {i}?", answer=f"GENHX#{a}",
            meta={"section_header": "genhx", "section_text": a},
        )
        for i, a in enumerate(answers)
    ]  # fmt: skip
    write_jsonl(tmp_path / name, items)
    return tmp_path / name


def gens_for(items_file: Path, out: Path) -> Path:
    rows = [
        {"id": it["id"], "item_sha": item_sha(it), "run": "m:base", "output": it["answer"]}
        for it in read_jsonl(items_file)
    ]
    write_jsonl(out, rows)
    return out


def assert_one_line_error(rc, err, needles, output: Path | None):
    assert rc == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("kmedqa: error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    if output is not None:
        assert not output.exists(), f"partial output {output}"


# --------------------------------------------------------------------------- refused cases
# Each builder returns (argv, needles the one line must contain, output that must not exist).


def refused(t: Path, argv: list, needles: list[str], output: str = "items.jsonl"):
    """The case ``argv -o t/output``: (argv, needles, the output that must not appear)."""
    return [*argv, "-o", t / output], needles, t / output


def case_mts_cp1252(t):
    f = mts_csv(t / TS1, [["0", "GENHX", "Patient’s history.", "Doctor: Hi."]], encoding="cp1252")
    return refused(
        t, ["prepare", "mtsdialog", f], [str(f), "line 2", "field 'encoding'", "--encoding cp1252"]
    )


def case_mts_cp949(t):
    f = mts_csv(t / TS1, [["0", "GENHX", "환자의 병력.", "의사: 안녕하세요."]], encoding="cp949")
    return refused(
        t,
        ["prepare", "mtsdialog", f],
        [str(f), "field 'encoding'", "looks like CP949", "--encoding cp949"],
    )


def case_mts_utf16_no_bom(t):
    f = mts_csv(t / TS1, MTS_ROWS, encoding="utf-16-le")
    return refused(
        t, ["prepare", "mtsdialog", f], [str(f), "field 'encoding'", "looks like UTF-16"]
    )


def case_mts_unterminated_quote_at_eof(t):
    f = t / TS1
    f.write_text(
        MTS_HEADER + '0,GENHX,Summary.,"Doctor: hi\n1,CC,Cough.,Doctor: what\n', encoding="utf-8"
    )
    return refused(t, ["prepare", "mtsdialog", f], [str(f), "malformed CSV", "unterminated"])


def case_mts_unterminated_quote_swallows_rows(t):
    # the quote opened in row 0 closes at the end of row 2: a clean parse of ONE row
    f = t / TS1
    f.write_text(
        MTS_HEADER
        + '0,GENHX,Summary.,"Doctor: hi\n1,CC,Cough.,Doctor: what\n2,ROS,Negative.,Doctor: pain"\n',
        encoding="utf-8",
    )
    return refused(
        t,
        ["prepare", "mtsdialog", f],
        [str(f), "item 0", "field 'dialogue'", "data row '1'", "unterminated quote"],
    )


def case_mts_test_set_2_without_split(t):
    f = mts_csv(t / TS2, MTS_ROWS)
    return refused(
        t, ["prepare", "mtsdialog", f], [str(f), "field 'split'", "--split", "split_of_file"]
    )


def case_mts_output_is_a_folder(t):
    f = mts_csv(t / TS1, MTS_ROWS)
    out = t / "outdir"
    out.mkdir()
    return (
        ["prepare", "mtsdialog", f, "-o", out],
        [str(out), "field '-o/--output'", "is a folder"],
        None,
    )


def case_kormedmcqa_jsonl_cp949(t):
    f = t / "doctor-test.jsonl"
    f.write_bytes(jsonl_bytes([kmcqa_row(1)], "cp949"))
    return refused(t, ["prepare", "kormedmcqa", f], [str(f), "line 1", "field 'encoding'", "CP949"])


def case_kormedmcqa_output_is_a_folder(t):
    f = t / "doctor-test.jsonl"
    f.write_bytes(jsonl_bytes([kmcqa_row(1)]))
    return ["prepare", "kormedmcqa", f, "-o", t], [str(t), "is a folder"], None


def case_aihub_label_cp949(t):
    root = t / "aihub"
    write_zip(
        root / LABELS / "TL_내과.zip",
        {"a.json": json.dumps(aihub_rec(1), ensure_ascii=False).encode("cp949")},
    )
    return refused(
        t,
        ["prepare", "aihub", root],
        ["TL_내과.zip/a.json", "field 'encoding'", "looks like CP949"],
    )


def case_aihub_label_utf16_no_bom(t):
    root = t / "aihub"
    write_zip(
        root / LABELS / "TL_내과.zip",
        {"a.json": json.dumps(aihub_rec(1), ensure_ascii=False).encode("utf-16-le")},
    )
    return refused(t, ["prepare", "aihub", root], ["TL_내과.zip/a.json", "looks like UTF-16"])


def case_aihub_empty_zip_beside_good_zips(t):
    root = t / "aihub"
    good = json.dumps([aihub_rec(1), aihub_rec(2)], ensure_ascii=False).encode()
    write_zip(root / LABELS / "TL_내과.zip", {"a.json": good})
    write_zip(root / LABELS / "TL_외과.zip", {})
    return refused(t, ["prepare", "aihub", root], ["TL_외과.zip", "no JSON label files"])


def case_score_items_cp949(t):
    items = mts_items(t, "items.jsonl", ["Ok."])
    gens = gens_for(items, t / "gens.jsonl")
    items.write_bytes(items.read_text(encoding="utf-8").replace("visit", "방문").encode("cp949"))
    return refused(
        t, ["score", items, gens], [str(items), "field 'encoding'", "CP949"], "scores.jsonl"
    )


def case_score_generations_cp1252(t):
    items = mts_items(t, "items.jsonl", ["Ok."])
    gens = t / "gens.jsonl"
    gens.write_bytes(
        jsonl_bytes(
            [{"id": "mtsdialog-test-0", "run": "m:base", "output": "GENHX#Patient’s"}], "cp1252"
        )
    )
    return refused(
        t,
        ["score", items, gens],
        [str(gens), "line 1", "field 'encoding'", "cp1252"],
        "scores.jsonl",
    )


def case_score_other_items_same_ids(t):
    ts1 = mts_items(t, "ts1.jsonl", ["Seizures.", "Cough."])
    ts2 = mts_items(t, "ts2.jsonl", ["Congestion.", "Cough."])  # same ids, other content
    gens = gens_for(ts1, t / "ts1-gens.jsonl")
    return refused(
        t,
        ["score", ts2, gens],
        [str(gens), "item mtsdialog-test-0", "field 'item_sha'", str(ts2)],
        "scores.jsonl",
    )


def case_score_test_set_2_vs_test_set_1_generations(t):
    one, two = t / TS1, t / TS2
    mts_csv(one, MTS_ROWS)
    mts_csv(two, [[r[0], r[1], r[2] + " (set 2)", r[3]] for r in MTS_ROWS])
    assert run_cli(["prepare", "mtsdialog", one, "-o", t / "ts1.jsonl"], _CAP[0])[0] == 0
    args = ["prepare", "mtsdialog", two, "--split", "test", "-o", t / "ts2.jsonl"]
    assert run_cli(args, _CAP[0])[0] == 0
    gens = gens_for(t / "ts1.jsonl", t / "ts1-gens.jsonl")
    first = "first generation: mtsdialog-test-0"
    needles = [str(gens), "item mtsdialog-test2-0", first, "another items file"]
    return refused(t, ["score", t / "ts2.jsonl", gens], needles, "scores.jsonl")


def case_score_output_is_a_folder(t):
    items = mts_items(t, "items.jsonl", ["Ok."])
    gens = gens_for(items, t / "gens.jsonl")
    return ["score", items, gens, "-o", t], [str(t), "is a folder"], None


def case_compare_other_items(t):
    a, b = t / "a.jsonl", t / "b.jsonl"
    write_jsonl(a, [{"id": f"q{i}", "item_sha": f"{i:016x}", "m": i % 2} for i in range(4)])
    write_jsonl(b, [{"id": f"q{i}", "item_sha": f"{i + (i == 2):016x}", "m": 1} for i in range(4)])
    return refused(
        t, ["compare", a, b, "--metric", "m"], [str(b), "item q2", "field 'item_sha'"], "cmp.json"
    )


def case_compare_output_is_a_folder(t):
    a = t / "a.jsonl"
    write_jsonl(a, [{"id": "q0", "m": 1}])
    return ["compare", a, a, "--metric", "m", "-o", t], [str(t), "is a folder"], None


def case_judge_other_items_same_ids(t):
    ts1 = mts_items(t, "ts1.jsonl", ["Seizures.", "Cough."])
    ts2 = mts_items(t, "ts2.jsonl", ["Congestion.", "Cough."])
    gens = gens_for(ts1, t / "ts1-gens.jsonl")
    out = t / "judge.jsonl"
    argv = ["judge", ts2, "--generations", f"m:base={gens}", "--backend", "none",
            "--cache-dir", t / "cache", "-o", out, "--summary", t / "judge.json"]  # fmt: skip
    return argv, [str(gens), "item mtsdialog-test-0", "field 'item_sha'"], out


REFUSED = {
    name[len("case_") :]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")
}
_CAP: list = [None]


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_cli_refuses_with_one_line(case, tmp_path, capsys):
    _CAP[0] = capsys
    argv, needles, output = REFUSED[case](tmp_path)
    capsys.readouterr()
    rc, _, err = run_cli(argv, capsys)
    assert_one_line_error(rc, err, needles, output)


# --------------------------------------------------------------------------- accepted cases


def test_mts_declared_encoding_is_read(tmp_path, capsys):
    f = mts_csv(
        tmp_path / TS1, [["0", "GENHX", "Patient’s history.", "Doctor: Hi."]], encoding="cp1252"
    )
    out = tmp_path / "items.jsonl"
    rc, _, err = run_cli(["prepare", "mtsdialog", f, "--encoding", "cp1252", "-o", out], capsys)
    assert rc == 0, err
    assert read_jsonl(out)[0]["meta"]["section_text"] == "Patient’s history."


def test_mts_test_set_2_by_split_and_config(tmp_path, capsys):
    from kmedqa.data.sources import load_dataset_spec

    f = mts_csv(tmp_path / TS2, MTS_ROWS)
    out = tmp_path / "items.jsonl"
    rc, _, err = run_cli(["prepare", "mtsdialog", f, "--split", "test", "-o", out], capsys)
    assert rc == 0, err
    ids = [it["id"] for it in read_jsonl(out)]
    assert ids == ["mtsdialog-test2-0", "mtsdialog-test2-1", "mtsdialog-test2-2"]
    spec = {"loader": "mtsdialog", "path": str(f), "format": "mtsdialog", "split_of_file": "test", "split": {"mode": "all_test"}}  # fmt: skip
    items, _ = load_dataset_spec("mts_ts2", spec)
    assert [it["id"] for it in items] == ids and {it["meta"]["split"] for it in items} == {"test"}
    with pytest.raises(ConfigError, match="datasets.k.split_of_file"):
        load_dataset_spec("k", {**spec, "loader": "items"})


def test_mts_nul_bytes_are_stripped_with_a_warning(tmp_path, capsys, caplog):
    f = mts_csv(tmp_path / TS1, [["0", "GENHX", "Fine.", "Doctor: Hi\x00.\nPatient: Hel\x00lo."]])
    out = tmp_path / "items.jsonl"
    with caplog.at_level(logging.WARNING):
        rc, _, err = run_cli(["prepare", "mtsdialog", f, "-o", out], capsys)
    assert rc == 0, err
    assert read_jsonl(out)[0]["question"] == "Doctor: Hi.\nPatient: Hello."
    assert any(
        "stripped 2 NUL" in r.getMessage() and str(f) in r.getMessage() for r in caplog.records
    )


def test_mts_headers_normalized_as_the_scorer_does(tmp_path):
    from kmedqa.data.mtsdialog import load_mtsdialog, normalize_header
    from kmedqa.metrics.sections import normalize_section

    f = mts_csv(tmp_path / TS1, [["0", "Past Medical HX", "None.", "Doctor: Any illness?"]])
    (item,) = load_mtsdialog(f)
    assert item["domain"] == "pastmedicalhx" == normalize_section("Past Medical HX")
    for raw in ("FAM/SOCHX", " fam / sochx ", "OTHER HISTORY", "Past Medical HX", "genhx"):
        assert normalize_header(raw) == normalize_section(raw)


def test_aihub_nfd_tree_from_macos(tmp_path, capsys):
    root = tmp_path / "aihub"
    nfd = lambda s: unicodedata.normalize("NFD", s)  # noqa: E731
    src = root / nfd("01.원천데이터") / nfd("내과")  # no TS_ prefix: only the NFC name tells
    src.mkdir(parents=True)
    (src / "raw.json").write_text(
        json.dumps({"text": "원문"}, ensure_ascii=False), encoding="utf-8"
    )
    lab = root / nfd(LABELS) / nfd("TL_내과")
    lab.mkdir(parents=True)
    (lab / "a.json").write_text(
        json.dumps([aihub_rec(1), aihub_rec(2)], ensure_ascii=False), encoding="utf-8"
    )
    out = tmp_path / "items.jsonl"
    rc, _, err = run_cli(["prepare", "aihub", root, "-o", out], capsys)
    assert rc == 0, err
    items = read_jsonl(out)
    assert len(items) == 2 and {it["meta"]["source_split"] for it in items} == {"Training"}
    assert all(
        it["meta"]["source_file"] == unicodedata.normalize("NFC", it["meta"]["source_file"])
        for it in items
    )


def test_aihub_declared_encoding_and_utf16_bom(tmp_path, capsys):
    root = tmp_path / "aihub"
    write_zip(
        root / LABELS / "TL_내과.zip",
        {"a.json": json.dumps(aihub_rec(1), ensure_ascii=False).encode("cp949")},
    )
    write_zip(
        root / LABELS / "VL_내과.zip",
        {"b.json": json.dumps(aihub_rec(2), ensure_ascii=False).encode("utf-16")},
    )
    out = tmp_path / "items.jsonl"
    rc, _, err = run_cli(["prepare", "aihub", root, "--encoding", "cp949", "-o", out], capsys)
    assert rc == 2 and "VL_내과.zip/b.json" in err  # the declared encoding is not UTF-16
    (root / LABELS / "VL_내과.zip").unlink()
    rc, _, err = run_cli(["prepare", "aihub", root, "--encoding", "cp949", "-o", out], capsys)
    assert rc == 0, err
    assert read_jsonl(out)[0]["answer"] == "임신 24~28주"
    (root / LABELS / "TL_내과.zip").unlink()
    write_zip(
        root / LABELS / "VL_내과.zip",
        {"b.json": json.dumps(aihub_rec(2), ensure_ascii=False).encode("utf-16")},
    )
    rc, _, err = run_cli(["prepare", "aihub", root, "-o", out], capsys)  # a BOM says it all
    assert rc == 0, err


def test_kormedmcqa_duplicate_q_numbers_warn(tmp_path, capsys, caplog):
    f = tmp_path / "doctor-test.jsonl"
    f.write_bytes(jsonl_bytes([kmcqa_row(1), kmcqa_row(2), kmcqa_row(1, answer=2)]))
    out = tmp_path / "items.jsonl"
    with caplog.at_level(logging.WARNING):
        rc, _, err = run_cli(["prepare", "kormedmcqa", f, "-o", out], capsys)
    assert rc == 0, err
    assert [it["id"] for it in read_jsonl(out)][-1].endswith("-2")
    (msg,) = [r.getMessage() for r in caplog.records if "q_number" in r.getMessage()]
    assert str(f) in msg and "row 3" in msg and "row 1" in msg


def test_kormedmcqa_declared_encoding(tmp_path, capsys):
    f = tmp_path / "doctor-test.jsonl"
    f.write_bytes(jsonl_bytes([kmcqa_row(1)], "cp949"))
    out = tmp_path / "items.jsonl"
    rc, _, err = run_cli(["prepare", "kormedmcqa", f, "--encoding", "cp949", "-o", out], capsys)
    assert rc == 0, err
    assert read_jsonl(out)[0]["options"][0] == "메트포르민"


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_outputs_honour_the_umask(tmp_path, capsys, mask):
    f = mts_csv(tmp_path / TS1, MTS_ROWS)
    out = tmp_path / "items.jsonl"
    old = os.umask(mask)
    try:
        rc, _, err = run_cli(["prepare", "mtsdialog", f, "-o", out], capsys)
    finally:
        os.umask(old)
    assert rc == 0, err
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask


# --------------------------------------------------------------------------- caches


def _cut_points(data: bytes) -> dict[str, int]:
    """Offsets inside the last line: at an ASCII byte, and inside a multi-byte character."""
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    last = data[start:]
    multi = next(i for i, b in enumerate(last) if b >= 0xC0) + 1  # after a lead byte
    return {"ascii": start + last.index(b'"') + 2, "multibyte": start + multi}


@pytest.mark.parametrize("where", ["ascii", "multibyte"])
def test_append_jsonl_torn_tail_is_dropped_and_never_merged(tmp_path, caplog, where):
    path = tmp_path / "cache.jsonl"
    append_jsonl(path, [{"id": "문항-1", "output": "답 하나"}, {"id": "문항-2", "output": "답 둘"}])
    data = path.read_bytes()
    path.write_bytes(data[: _cut_points(data)[where]])
    with caplog.at_level(logging.WARNING):
        assert [r["id"] for r in read_jsonl_tail_tolerant(path)] == ["문항-1"]
    assert any("torn last line" in r.getMessage() for r in caplog.records)
    append_jsonl(path, [{"id": "문항-3", "output": "답 셋"}])
    assert [r["id"] for r in read_jsonl_tail_tolerant(path)] == ["문항-1", "문항-3"]
    assert [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()] == [
        "문항-1",
        "문항-3",
    ]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from kmedqa.testing import tiny_model_json

    return tiny_model_json(tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize("where", ["ascii", "multibyte"])
def test_generation_cache_torn_line_is_recomputed(tiny, tmp_path, caplog, where):
    from kmedqa.generation import GenerationSettings, generate

    items = [
        make_item(id=f"문항-{i}", dataset="aihub71875", task="short", question=f"해열제는? {i}", answer="아세트아미노펜")
        for i in range(6)
    ]  # fmt: skip
    kw = dict(
        model_json=str(tiny), items=items, formats={"aihub71875": "aihub"}, run="r",
        eval_set="e", progress=False,
        settings=GenerationSettings(device="cpu", batch_size=3, max_new_tokens={"short": 3}),
    )  # fmt: skip
    first = generate(out_path=str(tmp_path / "a.jsonl"), cache_dir=str(tmp_path / "c"), **kw)
    cache = Path(first["cache"])
    data = cache.read_bytes()
    cache.write_bytes(data[: _cut_points(data)[where]])
    with caplog.at_level(logging.WARNING):
        second = generate(out_path=str(tmp_path / "b.jsonl"), cache_dir=str(tmp_path / "c"), **kw)
    assert any("torn last line" in r.getMessage() for r in caplog.records)
    assert second["n_cached"] == 3 and second["n_generated"] == 3  # the torn batch, again
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()
    lines = cache.read_text(encoding="utf-8").splitlines()
    assert all(isinstance(json.loads(line), dict) for line in lines)  # nothing merged
    assert all(
        r["item_sha"] == item_sha(it)
        for r, it in zip(read_jsonl(tmp_path / "b.jsonl"), items, strict=True)
    )


def test_judge_cache_damaged_entry_is_absent(tmp_path):
    from kmedqa.judge.cache import JudgeCache

    cache = JudgeCache(tmp_path)
    key = "ab" + "0" * 62
    cache.put({"key": key, "score": 3})
    data = cache.path(key).read_bytes()
    cache.path(key).write_bytes(data[:-3] + "점".encode()[:2])  # cut inside a character
    assert cache.get(key) is None and key not in cache


# --------------------------------------------------------------------------- config and models


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({"max_stpes": 10}, "training.args.max_stpes: not an option of TRL .* did you mean 'max_steps'"),
        ({"num_train_epochs": "many"}, "training.args.num_train_epochs: must be float or int, got str"),
        ({"lr_scheduler_type": "cosin"}, "training.args.lr_scheduler_type: 'cosin' is not one of .* did you mean 'cosine'"),
        ({"per_device_train_batch_size": "2.5"}, "per_device_train_batch_size: must be an integer"),
        ({"output_dir": "x"}, "training.args.output_dir: set by kmedqa"),
    ],
)  # fmt: skip
def test_training_args_refused_at_config_load(args, needle):
    from kmedqa.training.args import check_training_args

    with pytest.raises(ConfigError, match=needle):
        check_training_args(dict(args))


def test_training_args_numeric_strings_are_coerced_with_a_note(repo_root, capsys):
    import yaml

    from kmedqa.workflow import validate_config

    cfg = yaml.safe_load((repo_root / "config.yaml").read_text(encoding="utf-8"))
    cfg.setdefault("training", {}).setdefault("args", {})["learning_rate"] = "2e-4"
    cfg["training"]["args"]["max_steps"] = "3"
    validate_config(cfg, str(repo_root / "schemas" / "config.schema.yaml"))
    assert cfg["training"]["args"]["learning_rate"] == 2e-4
    assert cfg["training"]["args"]["max_steps"] == 3 and isinstance(
        cfg["training"]["args"]["max_steps"], int
    )
    err = capsys.readouterr().err
    assert "training.args.learning_rate: '2e-4' is text in YAML; read as the number 0.0002" in err


def test_training_args_typo_stops_snakemake_dry_run(repo_root, tmp_path):
    import subprocess
    import sys

    import yaml

    cfg = yaml.safe_load(
        (repo_root / "experiments" / "clinical_notes.yaml").read_text(encoding="utf-8")
    )
    cfg["training"]["args"]["max_stpes"] = 10
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--snakefile", str(repo_root / "Snakefile"),
         "--directory", str(tmp_path), "--configfile", str(path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "training.args.max_stpes: not an option" in proc.stderr + proc.stdout
    assert "did you mean 'max_steps'" in proc.stderr + proc.stdout


def test_sft_field_list_matches_installed_trl():
    from kmedqa.training.args import load_field_table, sft_field_table

    assert load_field_table() == sft_field_table(), (
        "regenerate src/kmedqa/training/sft_fields.json: python -m kmedqa.training.args"
    )


def test_hub_model_neither_cached_nor_reachable(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from kmedqa.models import materialize

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError) as err:
        materialize("m", {"source": "hub", "id": "no-such-org/no-such-model"}, tmp_path / "out")
    msg = str(err.value)
    assert msg.startswith("models.m.id: model no-such-org/no-such-model is neither cached")
    assert "\n" not in msg and not (tmp_path / "out" / "model.json").exists()
    # a cached snapshot passes
    repo = tmp_path / "hub" / "models--no-such-org--no-such-model"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    (repo / "snapshots" / ("0" * 40)).mkdir(parents=True)
    (repo / "snapshots" / ("0" * 40) / "config.json").write_text("{}")
    info = materialize("m", {"source": "hub", "id": "no-such-org/no-such-model"}, tmp_path / "out")
    assert info["hub_check"] == "cached"


# --------------------------------------------------------------------------- loaders (library)


@pytest.mark.parametrize(
    ("loader", "build", "needles"),
    [
        ("mtsdialog", lambda t: mts_csv(t / TS1, MTS_ROWS, encoding="utf-16-le"), ["looks like UTF-16"]),
        ("kormedmcqa", lambda t: (t / "doctor.csv").write_bytes("subject,q_number\n의사,1\n".encode("cp949")) and t / "doctor.csv", ["CP949"]),
        ("instruct", lambda t: (t / "x.jsonl").write_bytes(jsonl_bytes([{"question": "열은?", "answer": "해열제"}], "cp949")) and t / "x.jsonl", ["CP949"]),
        ("items", lambda t: (t / "x.jsonl").write_bytes(jsonl_bytes([{"id": "가"}], "cp949")) and t / "x.jsonl", ["CP949"]),
        ("aihub", lambda t: write_zip(t / "TL_a.zip", {}), ["no JSON label files"]),
    ],
)  # fmt: skip
def test_workflow_loaders_refuse_with_file_and_field(tmp_path, loader, build, needles):
    from kmedqa.data.sources import load_dataset_spec

    path = build(tmp_path)
    spec = {"loader": loader, "path": str(path), "format": "aihub", "split": {"mode": "all_test"}}
    with pytest.raises(InputError) as err:
        load_dataset_spec("d", spec)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg
    for needle in needles:
        assert needle in msg


@pytest.mark.skipif(not MTS_DIR.is_dir(), reason=f"MTS-Dialog not found at {MTS_DIR}")
def test_real_mts_dialog_ids_never_collide(tmp_path):
    from kmedqa.data.mtsdialog import load_mtsdialog

    ts1 = load_mtsdialog(MTS_DIR / TS1)
    renamed = tmp_path / TS2  # test set 2's name with test set 1's rows: ids still differ
    renamed.write_bytes((MTS_DIR / TS1).read_bytes())
    ts2 = load_mtsdialog(renamed, split="test")
    assert len(ts1) == len(ts2) == 200
    assert not {it["id"] for it in ts1} & {it["id"] for it in ts2}
    assert ts2[0]["id"] == "mtsdialog-test2-0"
