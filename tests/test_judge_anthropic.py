"""The Anthropic backend through the real SDK against a fake API on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import random

import pytest
from helpers.fake_anthropic import VALID, FakeAnthropic
from helpers.judge_fixtures import make_generations, make_items
from helpers.loopback import server_fixture

from kmedqa.cli import main as kmedqa_main
from kmedqa.errors import KmedqaError
from kmedqa.io import read_json, read_jsonl, write_jsonl
from kmedqa.judge.backends.anthropic import AnthropicBackend
from kmedqa.judge.cache import reply_key
from kmedqa.judge.rubric import load_rubric
from kmedqa.judge.run import judge_run

KEY = "sk-test-K3yThatMustNeverBeWritten-0123456789"
MODEL = "claude-sonnet-4-6"


server = server_fixture(FakeAnthropic)


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)


def config(server, **over):
    cfg = {
        "allow_external": True,
        "model": MODEL,
        "base_url": server.url,
        "sample": "all",
        "timeout_s": 5,
        "max_api_retries": 3,
        "max_invalid_retries": 2,
        "backoff": {"base_s": 1.0, "max_s": 8.0},
        "batch_threshold": None,
    }
    cfg.update(over)
    return cfg


def run(tmp_path, cfg, items=None, sleeps=None, name="judge"):
    items = items if items is not None else make_items(with_mcq=False)[:2]
    gens = make_generations(items)
    sleeps = sleeps if sleeps is not None else []
    backend = AnthropicBackend(cfg, sleep=sleeps.append, rng=random.Random(0))
    out, summ = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.summary.json"
    summary = judge_run(items, gens, cfg, tmp_path / "cache", out, summ, backend=backend)
    return summary, read_jsonl(out)


def test_success_request_shape(tmp_path, server):
    summary, rows = run(tmp_path, config(server))
    assert summary["status"] == "ok" and summary["n_ok"] == 4 and summary["n_invalid"] == 0
    assert summary["calls_made"] == 4 and server.n_messages == 4
    assert summary["tokens"] == {"input": 400, "output": 80}
    cost = summary["cost_estimate"]
    assert cost["label"] == "estimate" and cost["usd"] == pytest.approx((400 * 3 + 80 * 15) / 1e6)
    r = rows[0]
    assert (r["accuracy"], r["completeness"], r["relevance"]) == (4, 3, 5)
    assert r["rationale"] == VALID["rationale"] and r["raw"] is None and r["status"] == "ok"
    assert (r["judge_backend"], r["judge_model"], r["rubric_id"], r["rubric_version"]) == (
        "anthropic",
        MODEL,
        "rubric_ko",
        "1",
    )
    method, path, headers, body = server.requests[0]
    assert (method, path) == ("POST", "/v1/messages")
    assert body["tool_choice"] == {"type": "tool", "name": "record_scores"}
    assert [t["name"] for t in body["tools"]] == ["record_scores"]
    assert body["tools"][0]["input_schema"]["required"] == ["accuracy", "completeness", "relevance"]
    assert "temperature" not in body and "top_p" not in body and "top_k" not in body
    assert body["model"] == MODEL and "의학적 정확성" in body["system"]
    assert headers.get("x-stainless-retry-count") == "0"  # the SDK's own retries are off


def test_429_then_success(tmp_path, server):
    server.script = [("status", 429), ("status", 529)]
    sleeps = []
    summary, rows = run(tmp_path, config(server), sleeps=sleeps)
    assert summary["n_ok"] == 4 and summary["retries"]["transport"] == 2
    assert server.n_messages == 6 and summary["calls_made"] == 6
    # exponential backoff with jitter: attempt 0 in [0.5, 1], attempt 1 in [1, 2]
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_timeout_is_retried(tmp_path, server):
    server.script = [("sleep", 1.0)]
    summary, rows = run(
        tmp_path, config(server, timeout_s=0.2), items=make_items(with_mcq=False)[:1]
    )
    assert summary["n_ok"] == 2 and summary["retries"]["transport"] == 1


def test_500s_exhausted_recorded_invalid_not_cached(tmp_path, server):
    server.default = ("status", 500)
    sleeps = []
    cfg = config(server, max_api_retries=2)
    summary, rows = run(tmp_path, cfg, items=make_items(with_mcq=False)[:1], sleeps=sleeps)
    assert server.n_messages == 2 * 3  # 1 + 2 retries per request
    assert summary["n_invalid"] == 2 and summary["n_ok"] == 0
    for r in rows:
        assert r["status"] == "invalid" and r["accuracy"] is None and r["relevance"] is None
        assert "API error after 3 tries" in r["error"] and "HTTP 500" in r["error"]
    assert len(sleeps) == 4 and all(s <= 8.0 for s in sleeps)
    # not a reply: a rerun asks again (and now succeeds)
    server.default = ("scores", dict(VALID))
    summary2, rows2 = run(tmp_path, cfg, items=make_items(with_mcq=False)[:1])
    assert summary2["cache_hits"] == 0 and summary2["n_ok"] == 2


@pytest.mark.parametrize(
    "bad, why",
    [
        ({"accuracy": 4, "relevance": 5}, "'completeness' is a required property"),
        ({"accuracy": 4, "completeness": 7, "relevance": 5}, "7 is greater than the maximum of 5"),
    ],
)
def test_malformed_reply_retried_then_invalid_with_raw(tmp_path, server, bad, why):
    server.default = ("scores", bad)
    items = make_items(with_mcq=False)[:1]
    summary, rows = run(tmp_path, config(server), items=items)
    assert server.n_messages == 2 * 3  # 1 + max_invalid_retries per request
    assert summary["retries"]["invalid_reply"] == 4
    for r in rows:
        assert r["status"] == "invalid"
        assert json.loads(r["raw"]) == bad
        assert why in r["error"] and "after 3 attempt(s)" in r["error"]
        assert r["accuracy"] is None and r["completeness"] is None and r["relevance"] is None
    # an invalid *reply* is cached: no new call on rerun
    summary2, rows2 = run(tmp_path, config(server), items=items)
    assert server.n_messages == 6 and summary2["cache_hits"] == 2 and rows2 == rows


def test_malformed_then_valid(tmp_path, server):
    server.script = [
        ("text", "정확성 4점입니다"),
        ("scores", {"accuracy": 2, "completeness": 2, "relevance": 2}),
    ]
    summary, rows = run(tmp_path, config(server), items=make_items(with_mcq=False)[:1])
    assert rows[0]["status"] == "ok" and rows[0]["accuracy"] == 2
    assert server.n_messages == 3


def test_cache_prevents_second_call(tmp_path, server):
    cfg = config(server)
    run(tmp_path, cfg)
    assert server.n_messages == 4
    summary, rows = run(tmp_path, cfg, name="again")
    assert server.n_messages == 4  # nothing new asked
    assert summary["cache_hits"] == 4 and summary["calls_made"] == 0
    assert summary["tokens"] == {"input": 0, "output": 0}
    # a new rubric version or model is a new key
    summary3, _ = run(tmp_path, config(server, model="claude-haiku-4-5"), name="haiku")
    assert summary3["cache_hits"] == 0 and server.n_messages == 8


def test_partial_progress_survives_a_crash(tmp_path, server):
    server.script = [("scores", dict(VALID)), ("status", 401)]
    with pytest.raises(KmedqaError, match="HTTP 401"):
        run(tmp_path, config(server))
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 1  # the first reply was kept
    summary, _ = run(tmp_path, config(server))
    assert summary["cache_hits"] == 1 and summary["calls_made"] == 3


def test_auto_tool_choice_and_extra_params(tmp_path, server):
    cfg = config(server, tool_choice="auto", extra_params={"thinking": {"type": "disabled"}})
    run(tmp_path, cfg, items=make_items(with_mcq=False)[:1])
    body = server.requests[0][3]
    assert body["tool_choice"] == {"type": "auto"} and body["thinking"] == {"type": "disabled"}


def batch_keys(items, gens, model=MODEL):
    tag = load_rubric().tag
    by_id = {it["id"]: it for it in items}
    return {
        (run, g["id"]): reply_key(
            "anthropic",
            model,
            tag,
            by_id[g["id"]]["question"],
            by_id[g["id"]]["answer"],
            g["output"],
        )
        for run, lines in gens.items()
        for g in lines
    }


def test_batch_lifecycle(tmp_path, server):
    items = make_items(with_mcq=False)[:4]
    keys = batch_keys(items, make_generations(items))
    server.batch_results = {
        keys[("base", "em-001")]: ("errored", None),
        keys[("ft", "em-002")]: ("expired", None),
        keys[("ft", "em-003")]: ("scores", {"accuracy": 9, "completeness": 1, "relevance": 1}),
    }
    server.batch_polls_before_end = 2
    sleeps = []
    cfg = config(
        server,
        batch_threshold=5,
        batch_poll={"initial_s": 10, "max_s": 300, "factor": 2, "timeout_s": 1000},
    )
    summary, rows = run(tmp_path, cfg, items=items, sleeps=sleeps)
    assert server.count("POST", "/v1/messages/batches") == 1
    created = next(b for m, p, h, b in server.requests if p == "/v1/messages/batches")
    assert sorted(r["custom_id"] for r in created["requests"]) == sorted(keys.values())
    assert all("temperature" not in r["params"] for r in created["requests"])
    assert sleeps == [10, 20]  # in_progress, in_progress, ended: backoff between polls
    assert summary["batches"] == ["msgbatch_001"] and summary["batch_fallbacks"] == 3
    # errored + expired + invalid-in-batch were asked directly (one call each, all valid now)
    assert server.n_messages == 3 and summary["calls_made"] == 3
    assert summary["n_ok"] == 8 and summary["n_invalid"] == 0
    assert {(r["run"], r["id"]) for r in rows} == set(keys)
    # batch tokens cost half
    cost = summary["cost_estimate"]
    # 6 succeeded in the batch (the out-of-range one is billed too), 3 direct re-asks
    expect = 6 * (100 * 3 + 20 * 15) / 1e6 * 0.5 + 3 * (100 * 3 + 20 * 15) / 1e6
    assert cost["usd"] == pytest.approx(expect)
    assert not list((tmp_path / "cache" / "_state").glob("batch-*.json"))  # done: state removed


def test_batch_resumes_after_kill(tmp_path, server):
    items = make_items(with_mcq=False)[:3]
    server.batch_polls_before_end = 3
    cfg = config(
        server,
        batch_threshold=2,
        batch_poll={"initial_s": 5, "max_s": 5, "factor": 1, "timeout_s": 5},
    )
    with pytest.raises(KmedqaError, match="rerun to resume"):
        run(tmp_path, cfg, items=items)
    assert len(list((tmp_path / "cache" / "_state").glob("batch-*.json"))) == 1
    cfg["batch_poll"] = {"initial_s": 5, "max_s": 5, "factor": 1, "timeout_s": 100}
    summary, rows = run(tmp_path, cfg, items=items)
    assert server.count("POST", "/v1/messages/batches") == 1  # the same batch, not a new one
    assert summary["n_ok"] == 6 and server.n_messages == 0


def test_key_never_written(tmp_path, server, caplog):
    log_file = tmp_path / "judge.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    root = logging.getLogger()
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.DEBUG)
    try:
        items = make_items(with_mcq=False)[:3]
        # a 400 whose message repeats the Authorization header, 500s, an invalid reply
        server.script = [
            ("echo", 400),
            ("status", 500),
            ("status", 500),
            ("status", 500),
            ("status", 500),
        ]
        server.script += [("text", f"my key is {KEY}")] * 3
        summary, rows = run(tmp_path, config(server), items=items)
        assert summary["n_invalid"] == 3
        echoed = [r for r in rows if "bad request from" in (r["error"] or "")]
        assert echoed and "[REDACTED]" in echoed[0]["error"]
        # and through the CLI, with its own log file
        write_jsonl(tmp_path / "items.jsonl", items)
        for run_name, lines in make_generations(items).items():
            write_jsonl(tmp_path / f"{run_name}.gen.jsonl", lines)
        (tmp_path / "judge.yaml").write_text(
            json.dumps({"judge": config(server)}), encoding="utf-8"
        )
        server.script = [("echo", 400)]
        rc = kmedqa_main(
            [
                "judge",
                str(tmp_path / "items.jsonl"),
                "--generations",
                f"base={tmp_path / 'base.gen.jsonl'}",
                f"ft={tmp_path / 'ft.gen.jsonl'}",
                "--config",
                str(tmp_path / "judge.yaml"),
                "--cache-dir",
                str(tmp_path / "cache2"),
                "--log",
                str(tmp_path / "cli.log"),
                "-o",
                str(tmp_path / "cli.jsonl"),
                "--summary",
                str(tmp_path / "cli.summary.json"),
            ]
        )
        assert rc == 0
        assert read_json(tmp_path / "cli.summary.json")["n_ok"] == 5
        # 401 aborts the run; the error names no key
        server.script = [("echo", 401)]
        with pytest.raises(KmedqaError) as exc:
            run(tmp_path, config(server), items=make_items(with_mcq=False)[3:4], name="auth")
        assert KEY not in str(exc.value)
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(old)
    assert server.requests[0][2]["Authorization"] == f"Bearer {KEY}"  # the key really was used
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) > 10 and log_file.stat().st_size > 0
    for p in written:
        assert KEY.encode() not in p.read_bytes(), p
    assert KEY not in caplog.text
