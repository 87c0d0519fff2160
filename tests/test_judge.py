"""Judge core without any network: rubric, validation, sample, cache, privacy gate, Table 5."""

from __future__ import annotations

import json

import pytest
from helpers.judge_fixtures import make_generations, make_items

from kmedqa.errors import ConfigError, InputError
from kmedqa.io import read_json, read_jsonl
from kmedqa.judge.base import (
    ROW_FIELDS,
    BackendStats,
    JudgeReply,
    JudgeRequest,
    cost_estimate,
    resolve_config,
    scrub,
)
from kmedqa.judge.cache import JudgeCache, reply_key
from kmedqa.judge.rubric import find_json_object, load_rubric, parse_json_reply
from kmedqa.judge.run import judge_run, select_sample
from kmedqa.judge.table import table5


def test_rubric_is_versioned_data():
    r = load_rubric()
    assert (r.id, r.version) == ("rubric_ko", "1")
    assert r.keys == ("accuracy", "completeness", "relevance")
    assert {c["name_ko"] for c in r.criteria} == {"의학적 정확성", "완전성", "관련성"}
    assert r.tool_name == "record_scores"
    assert "의학적 정확성" in r.system()
    user = r.user("질문?", "참고", "답변", mode="tool")
    assert "질문?" in user and "참고" in user and "record_scores" in user


@pytest.mark.parametrize(
    "obj, ok",
    [
        ({"accuracy": 4, "completeness": 3, "relevance": 5}, True),
        ({"accuracy": 4, "completeness": 3, "relevance": 5, "rationale": "근거"}, True),
        ({"accuracy": 4, "completeness": 3}, False),  # missing
        ({"accuracy": 6, "completeness": 3, "relevance": 5}, False),  # out of range
        ({"accuracy": 0, "completeness": 3, "relevance": 5}, False),
        ({"accuracy": 3.5, "completeness": 3, "relevance": 5}, False),
        ({"accuracy": "4", "completeness": 3, "relevance": 5}, False),
        ({"accuracy": True, "completeness": 3, "relevance": 5}, False),
        ({"accuracy": 4, "completeness": 3, "relevance": 5, "extra": 1}, False),
        ([4, 3, 5], False),
    ],
)
def test_validate_never_guesses(obj, ok):
    scores, err = load_rubric().validate(obj)
    assert (scores is not None) == ok
    assert (err is None) == ok


def test_parse_json_reply_from_free_text():
    r = load_rubric()
    text = '평가: ```json\n{"accuracy": 5, "completeness": 4, "relevance": 5}\n``` 끝'
    assert parse_json_reply(text, r)[0]["completeness"] == 4
    assert (
        find_json_object('점수는 {"accuracy": 2, "completeness": 2, "relevance": 3} 입니다')[
            "relevance"
        ]
        == 3
    )
    assert parse_json_reply("정확성 5점, 완전성 4점", r) == (None, "no JSON object in reply")
    assert parse_json_reply('{"accuracy": 9, "completeness": 4, "relevance": 5}', r)[0] is None


def test_config_defaults_and_errors():
    cfg = resolve_config({})
    assert cfg["allow_external"] is False and cfg["backend"] == "anthropic"
    assert cfg["sample"] == {
        "n": 30,
        "tasks": ["short", "descriptive"],
        "seed": 42,
        "strata": ["q_type", "domain"],
    }
    assert resolve_config({"judge": {"batch_threshold": None}})["batch_threshold"] is None
    with pytest.raises(ConfigError, match="temperature"):
        resolve_config({"extra_params": {"temperature": 0}})
    with pytest.raises(ConfigError, match="judge.allow_external"):
        resolve_config({"allow_external": "yes"})
    with pytest.raises(ConfigError, match="unknown key"):
        resolve_config({"bogus": 1})
    with pytest.raises(ConfigError, match="local backend needs"):
        resolve_config({"backend": "local"})
    with pytest.raises(ConfigError, match="judge.sample"):
        resolve_config({"sample": {"n": 0}})


def test_sample_stratified_seeded_and_all():
    items = make_items(n_per_cell=5)  # 4 domains x 2 types x 5 + 1 mcq
    ids = {it["id"] for it in items}
    spec = {"n": 8, "tasks": ["short", "descriptive"], "seed": 42, "strata": ["q_type", "domain"]}
    a = select_sample(items, ids, spec)
    b = select_sample(list(reversed(items)), ids, spec)
    assert [i["id"] for i in a] == [i["id"] for i in b]  # order-independent, seeded
    assert len(a) == 8
    cells = {(i["q_type"], i["domain"]) for i in a}
    assert len(cells) == 8  # proportional: one per stratum
    assert all(i["task"] != "mcq" for i in a)
    c = select_sample(items, ids, {**spec, "seed": 7})
    assert [i["id"] for i in c] != [i["id"] for i in a]
    assert len(select_sample(items, ids, "all")) == len(items)
    # only items every run answered are eligible
    assert all(i["id"] != "em-001" for i in select_sample(items, ids - {"em-001"}, "all"))


def test_cache_key_and_store(tmp_path):
    k = reply_key("anthropic", "m", "rubric_ko@1", "q", "ref", "ans")
    assert len(k) == 64 and k == reply_key("anthropic", "m", "rubric_ko@1", "q", "ref", "ans")
    assert k != reply_key("anthropic", "m", "rubric_ko@2", "q", "ref", "ans")
    assert k != reply_key("local", "m", "rubric_ko@1", "q", "ref", "ans")
    store = JudgeCache(tmp_path)
    assert store.get(k) is None
    store.put({"key": k, "status": "ok"})
    assert store.get(k)["status"] == "ok" and k in store
    store.path(k).write_text("{broken")
    assert store.get(k) is None  # unreadable entry is treated as absent, not trusted


def test_scrub(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-verysecret-123")
    assert "verysecret" not in scrub("Bearer sk-test-verysecret-123 failed")
    assert "sk-ant-" not in scrub("x-api-key: sk-ant-api03-abcdefghijkl")


def _run(tmp_path, cfg, backend=None, items=None):
    items = items or make_items()
    gens = make_generations(items)
    out, summ = tmp_path / "judge.jsonl", tmp_path / "summary.json"
    summary = judge_run(items, gens, cfg, tmp_path / "cache", out, summ, backend=backend)
    return summary, read_jsonl(out), read_json(summ)


def test_not_run_without_allow_external(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-abc123")
    summary, rows, on_disk = _run(tmp_path, {"sample": "all"})
    assert summary == on_disk
    assert summary["status"] == "not_run" and "allow_external" in summary["reason"]
    assert summary["n_ok"] == 0 and summary["calls_made"] == 0
    assert len(rows) == 2 * 9
    for r in rows:
        assert set(r) == set(ROW_FIELDS)
        assert r["status"] == "not_run"
        assert r["accuracy"] is None and r["completeness"] is None and r["relevance"] is None
    assert not (tmp_path / "cache").exists()  # nothing judged, nothing cached
    tab = table5(rows, "base", "ft", summary=summary)
    assert "Judge not run: judge.allow_external is false" in tab["markdown"]
    assert "Judge not run" in tab["latex"] and "allow\\_external" in tab["latex"]


def test_not_run_without_key(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    summary, rows, _ = _run(tmp_path, {"allow_external": True})
    assert summary["status"] == "not_run" and summary["reason"] == "ANTHROPIC_API_KEY is not set"
    assert len(rows) == 2 * 8  # default sample: 30 of short+descriptive -> all 8 here
    assert {r["status"] for r in rows} == {"not_run"}
    # the table can tell from the rows alone
    assert "Judge not run: ANTHROPIC_API_KEY is not set" in table5(rows, "base", "ft")["markdown"]


class ScriptedBackend:
    """A backend without network that answers from a function of the request."""

    name = "scripted"
    model = "scripted-1"
    external = False

    def __init__(self, answer):
        self.answer = answer
        self.stats = BackendStats()
        self.seen = []

    def prompt(self, rubric, question, reference, answer):
        return JudgeRequest(
            key="",
            system=rubric.system(),
            user=rubric.user(question, reference, answer, mode="json"),
        )

    def judge(self, requests, rubric, on_reply, state_dir):
        for req in requests:
            self.stats.calls += 1
            self.seen.append(req.key)
            on_reply(self.answer(req))


def judge_all(items, tmp_path, backend):
    """Judge every item of the fixture's runs with ``backend`` (cache in tmp_path/c)."""
    return judge_run(
        items,
        make_generations(items),
        {"sample": "all"},
        tmp_path / "c",
        tmp_path / "o",
        tmp_path / "s",
        backend=backend,
    )


def test_rows_invalid_recorded_not_imputed_and_cache(tmp_path):
    def answer(req):
        if "[base] em-001" in req.user:
            return JudgeReply(
                key=req.key,
                status="invalid",
                raw="점수: 다섯",
                error="invalid reply: no JSON object",
            )
        acc = 3 if "[base]" in req.user else 4
        return JudgeReply(
            key=req.key, status="ok", scores={"accuracy": acc, "completeness": 3, "relevance": 5}
        )

    b = ScriptedBackend(answer)
    summary, rows, _ = _run(tmp_path, {"sample": "all"}, backend=b)
    assert summary["status"] == "ok" and summary["n_requested"] == 18
    assert summary["n_invalid"] == 1 and summary["n_ok"] == 17 and summary["calls_made"] == 18
    bad = next(r for r in rows if r["id"] == "em-001" and r["run"] == "base")
    assert bad["status"] == "invalid" and bad["raw"] == "점수: 다섯"
    assert bad["accuracy"] is None and bad["completeness"] is None and bad["relevance"] is None
    ok = next(r for r in rows if r["id"] == "em-002" and r["run"] == "ft")
    assert (ok["accuracy"], ok["rubric_version"], ok["judge_model"]) == (4, "1", "scripted-1")

    b2 = ScriptedBackend(lambda req: pytest.fail("cached item was asked again"))
    summary2, rows2, _ = _run(tmp_path, {"sample": "all"}, backend=b2)
    assert summary2["cache_hits"] == 18 and summary2["calls_made"] == 0
    assert rows2 == rows

    tab = table5(rows, "base", "ft", n_resamples=2000, seed=1)
    d = tab["data"]
    assert d["n_pairs"] == 8  # 9 items ("all" includes the mcq one), em-001 excluded (base invalid)
    acc = d["criteria"][0]
    assert acc["mean_base"] == 3 and acc["mean_finetuned"] == 4 and acc["diff"] == 1
    assert acc["ci"] == [1.0, 1.0] and acc["invalid_base"] == 1 and acc["invalid_finetuned"] == 0
    assert "의학적 정확성 (Medical accuracy)" in tab["markdown"] and "+1.00" in tab["markdown"]
    assert "\\begin{tabular}" in tab["latex"] and "Medical accuracy" in tab["latex"]


def test_identical_answers_are_judged_once(tmp_path):
    items = make_items(with_mcq=False)
    gens = make_generations(items)
    gens["ft"] = [dict(g, run="ft") for g in gens["base"]]  # same outputs in both runs
    b = ScriptedBackend(
        lambda req: JudgeReply(
            key=req.key, status="ok", scores={"accuracy": 2, "completeness": 2, "relevance": 2}
        )
    )
    s = judge_run(
        items,
        gens,
        {"sample": "all"},
        tmp_path / "c",
        tmp_path / "o.jsonl",
        tmp_path / "s.json",
        backend=b,
    )
    assert s["n_requested"] == 16 and s["n_unique_requests"] == 8 and b.stats.calls == 8


def test_bad_generations_fail_early(tmp_path):
    items = make_items()
    gens = make_generations(items)
    gens["ft"][2] = {"id": gens["ft"][2]["id"], "run": "ft"}
    with pytest.raises(InputError, match="field 'output'"):
        judge_run(items, gens, {}, tmp_path / "c", tmp_path / "o", tmp_path / "s")


def test_table5_bootstrap_ci_and_missing_run():
    rows = []
    for i in range(20):
        for run, acc in (("base", 2 + i % 3), ("ft", 3 + i % 3 - (i % 5 == 0))):
            rows.append(
                {
                    "id": f"x{i}",
                    "run": run,
                    "status": "ok",
                    "accuracy": acc,
                    "completeness": 3,
                    "relevance": 4,
                    "judge_model": "m",
                }
            )
    d = table5(rows, "base", "ft", n_resamples=2000, seed=3)["data"]
    acc = d["criteria"][0]
    assert acc["n"] == 20 and acc["ci"][0] <= acc["diff"] <= acc["ci"][1]
    again = table5(rows, "base", "ft", n_resamples=2000, seed=3)["data"]
    assert again == d  # seeded
    with pytest.raises(InputError, match="no judge rows for run 'nope'"):
        table5(rows, "base", "nope")


def test_cost_estimate_is_labelled():
    st = BackendStats()
    st.direct_tokens = [1_000_000, 100_000]
    st.batch_tokens = [1_000_000, 0]
    cfg = resolve_config({})
    c = cost_estimate(cfg, "anthropic", "claude-sonnet-4-6", st)
    assert c["label"] == "estimate" and c["prices_as_of"]
    assert c["usd"] == pytest.approx(3.0 + 1.5 + 1.5)  # batch input at 50%
    unknown = cost_estimate(cfg, "anthropic", "claude-unknown", st)
    assert unknown["usd"] is None and "no price" in unknown["note"]
    assert json.dumps(c)  # serializable


def test_tampered_cache_entry_is_not_trusted(tmp_path):
    items = make_items(with_mcq=False)[:1]
    ok = lambda req: JudgeReply(  # noqa: E731
        key=req.key, status="ok", scores={"accuracy": 5, "completeness": 5, "relevance": 5}
    )
    b = ScriptedBackend(ok)
    judge_all(items, tmp_path, b)
    store = JudgeCache(tmp_path / "c")
    entry = store.get(b.seen[0])
    entry["scores"]["accuracy"] = 11
    store.put(entry)
    b3 = ScriptedBackend(ok)
    s = judge_all(items, tmp_path, b3)
    assert b3.seen == [b.seen[0]] and s["cache_hits"] == 1


def test_mcq_question_shows_options(tmp_path):
    items = [it for it in make_items() if it["task"] == "mcq"]
    b = ScriptedBackend(lambda req: JudgeReply(key=req.key, status="invalid", raw="?", error="x"))
    b.prompts = []
    orig = b.prompt
    b.prompt = lambda rubric, q, ref, ans: b.prompts.append(q) or orig(rubric, q, ref, ans)
    judge_all(items, tmp_path, b)
    assert b.prompts[0].endswith("A. 가\nB. 나\nC. 다")


def test_judge_table_cli(tmp_path):
    from kmedqa.cli import main
    from kmedqa.io import write_jsonl

    rows = [
        {
            "id": f"x{i}",
            "run": run,
            "status": "ok",
            "accuracy": 3 + (run == "ft"),
            "completeness": 3,
            "relevance": 4,
            "judge_model": "m",
        }
        for i in range(5)
        for run in ("base", "ft")
    ]
    write_jsonl(tmp_path / "j.jsonl", rows)
    md, tex = tmp_path / "t5.md", tmp_path / "t5.tex"
    assert (
        main(
            [
                "judge-table",
                str(tmp_path / "j.jsonl"),
                "--base",
                "base",
                "--finetuned",
                "ft",
                "--md",
                str(md),
                "--tex",
                str(tex),
                "--resamples",
                "500",
            ]
        )
        == 0
    )
    assert (
        "| 의학적 정확성 (Medical accuracy) | 3.00 | 4.00 | +1.00 | [+1.00, +1.00] | 5 | 0/0 |"
        in md.read_text()
    )
    assert "Medical accuracy & 3.00 & 4.00 & +1.00" in tex.read_text()


def test_backend_none_is_not_run(tmp_path):
    summary, rows, _ = _run(tmp_path, {"backend": "none", "allow_external": False})
    assert summary["status"] == "not_run" and "none" in summary["reason"]
    assert {r["status"] for r in rows} == {"not_run"} and rows[0]["judge_model"] is None
