"""Hosted generation backends through the real SDKs (google-genai, anthropic, openai)
against a fake API on 127.0.0.1 (tests/helpers/fake_hosted.py)."""

from __future__ import annotations

import copy
import json
import logging
import random

import pytest
from helpers.fake_hosted import DEFAULT_TEXT, USAGE, FakeHosted
from helpers.loopback import server_fixture

from kmedqa.errors import ConfigError, KmedqaError
from kmedqa.generation.backends import generate_hosted
from kmedqa.generation.backends.base import make_backend
from kmedqa.io import read_jsonl
from kmedqa.judge.run import judge_run
from kmedqa.prompts import build_messages, get_format
from kmedqa.scoring import score_items, summarize
from kmedqa.stats.paired_files import compare_paired
from kmedqa.workflow import check_config

KEYS = {
    "gemini": "gk-NeverWriteThisGeminiKey-0123456789",
    "anthropic": "sk-ant-NeverWriteThisAnthropicKey-0123456789",
    "openai": "sk-NeverWriteThisOpenAIKey-0123456789",
}
ENVS = {"gemini": "GEMINI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
PROVIDERS = ("gemini", "anthropic", "openai")
SETTINGS = {
    "max_retries": 2,
    "max_malformed_retries": 1,
    "timeout_s": 5,
    "backoff": {"base_s": 1.0, "max_s": 8.0},
}


server = server_fixture(FakeHosted)


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    for p, env in ENVS.items():
        monkeypatch.setenv(env, KEYS[p])


def items(n=2):
    out = []
    for i in range(n):
        out.append(
            {
                "id": f"mts-{i}",
                "dataset": "mts",
                "task": "section_summary",
                "domain": "GENHX",
                "q_type": "GENHX",
                "question": f"Doctor: What brings you in?\nPatient: A headache, day {i}.",
                "options": None,
                "answer": "GENHX#The patient reports a headache for two days.",
                "answer_index": None,
                "meta": {"section_header": "GENHX", "format": "mtsdialog"},
            }
        )
    return out


def spec(server, provider, **over):
    s = {
        "source": "api",
        "provider": provider,
        "id": f"{provider}-model",
        "base_url": server.url + ("/v1" if provider == "openai" else ""),
        "price": {"input": 0.3, "output": 2.5},
    }
    if provider == "gemini":
        s["thinking_budget"] = 0
    s.update(over)
    return s


def run(tmp_path, server, provider, its=None, sleeps=None, settings=None, **kw):
    sp = kw.pop("model_spec", None) or spec(server, provider)
    settings = settings or SETTINGS
    sleeps = sleeps if sleeps is not None else []
    backend = make_backend(sp, settings, sleep=sleeps.append, rng=random.Random(0))
    out = tmp_path / f"{provider}.jsonl"
    args = dict(
        spec=sp,
        settings=settings,
        items=its if its is not None else items(),
        formats={"mts": "mtsdialog"},
        run=f"{provider}-model:base",
        eval_set="mts-test",
        out_path=str(out),
        cache_dir=str(tmp_path / "cache"),
        may_leave_machine=True,
        backend=backend,
        progress=False,
    )
    args.update(kw)
    stats = generate_hosted(**args)
    return stats, read_jsonl(out)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_success_tokens_cost_and_request(tmp_path, server, provider):
    stats, rows = run(tmp_path, server, provider)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert rows[0]["output"] == DEFAULT_TEXT and rows[0]["raw"] is None
    assert rows[0]["format"] == "mtsdialog" and rows[0]["run"] == f"{provider}-model:base"
    thinking = 0 if provider == "anthropic" else USAGE["thinking"]
    assert stats["tokens"] == {"input": 240, "output": 60, "thinking": 2 * thinking}
    assert stats["n_status"] == {"ok": 2, "refused": 0, "malformed": 0}
    assert stats["cost_estimate"]["usd"] == pytest.approx(
        (240 * 0.3 + (60 + 2 * thinking) * 2.5) / 1e6
    )
    assert "hosted" in stats["inference_base"] and stats["n_generated"] == 2
    assert server.n_posts == 2
    _, path, headers, body = server.requests[0]
    text = json.dumps(body)
    assert "You are a clinical documentation assistant" in text  # the format's system prompt
    assert "A headache, day 0." in text
    if provider == "gemini":
        assert path.endswith("/gemini-model:generateContent")
        assert headers["x-goog-api-key"] == KEYS["gemini"]
        cfg = body["generationConfig"]
        assert thinking_budget(cfg) == 0
        assert cfg["maxOutputTokens"] == 256
        assert "systemInstruction" in body
    elif provider == "anthropic":
        assert body["max_tokens"] == 256 and body["system"].startswith("You are")
        assert "temperature" not in body
    else:
        assert path == "/v1/chat/completions"
        assert body["max_tokens"] == 256 and body["messages"][0]["role"] == "system"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_then_success(tmp_path, server, provider):
    server.script = [("status", 429)]
    sleeps = []
    stats, rows = run(tmp_path, server, provider, sleeps=sleeps)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 1.0  # attempt 0: base 1 s, equal jitter
    assert stats["this_invocation"]["retries_transport"] == 1
    assert server.n_posts == 3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_5xx_exhausted_fails_clearly_and_rerun_asks_only_the_rest(tmp_path, server, provider):
    """Decision: a request still failing after its retries is no reply; the job asks for
    every other item, then fails with one line; a rerun asks only for the failed items."""
    server.script = [("status", 503)] * 3  # max_retries 2: 3 tries for the first item
    sleeps = []
    with pytest.raises(KmedqaError) as exc:
        run(tmp_path, server, provider, sleeps=sleeps)
    msg = str(exc.value)
    assert "1 of 2 items" in msg and "mts-0" in msg and "503" in msg and "after 3 tries" in msg
    assert "\n" not in msg and len(sleeps) == 2 and sleeps[1] > sleeps[0] / 2
    assert not (tmp_path / f"{provider}.jsonl").exists()
    assert server.n_posts == 4  # 3 for the failing item, 1 for the other
    stats, rows = run(tmp_path, server, provider)
    assert [r["status"] for r in rows] == ["ok", "ok"] and server.n_posts == 5
    assert stats["n_cached"] == 1 and stats["n_generated"] == 1


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("kind", ["empty", "garbage"])
def test_malformed_reply_is_recorded_never_scored(tmp_path, server, provider, kind):
    server.script = [(kind, None), (kind, None)]  # first try + one re-ask
    stats, rows = run(tmp_path, server, provider)
    assert [r["status"] for r in rows] == ["malformed", "ok"]
    assert rows[0]["output"] == "" and rows[0]["raw"]
    assert stats["n_status"]["malformed"] == 1
    assert stats["this_invocation"]["retries_malformed"] == 1 and server.n_posts == 3
    scores = score_items(items(), rows, eval_set="mts-test")
    assert scores[0]["status"] == "malformed"
    assert scores[0]["section_correct"] is None and scores[0]["summary_rouge1_paper"] is None
    assert scores[1]["section_correct"] == 1
    overall = [s for s in summarize(scores) if s["group"] == "overall"][0]
    assert overall["n_not_answered"] == 1 and overall["n_section_correct"] == 1
    run(tmp_path, server, provider)  # a malformed reply is a reply: cached, not re-asked
    assert server.n_posts == 3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_refusal_is_recorded_not_reasked_not_scored(tmp_path, server, provider):
    server.script = [("refuse", None)]
    stats, rows = run(tmp_path, server, provider)
    assert [r["status"] for r in rows] == ["refused", "ok"] and rows[0]["output"] == ""
    assert server.n_posts == 2 and stats["n_status"]["refused"] == 1
    scores = score_items(items(), rows, eval_set="mts-test")
    assert scores[0]["status"] == "refused" and scores[0]["rouge1_paper"] is None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cache_hit_rerun_sends_nothing(tmp_path, server, provider):
    _, rows1 = run(tmp_path, server, provider)
    first = (tmp_path / f"{provider}.jsonl").read_text()
    stats, rows2 = run(tmp_path, server, provider)
    assert server.n_posts == 2 and stats["n_cached"] == 2 and stats["n_generated"] == 0
    assert (tmp_path / f"{provider}.jsonl").read_text() == first
    assert stats["tokens"]["input"] == 240  # the run's tokens, cached or not
    assert stats["this_invocation"]["calls"] == 0
    # another model id (or base URL, or budget) is another request
    run(tmp_path, server, provider, model_spec=spec(server, provider, id="other"))
    assert server.n_posts == 4


@pytest.mark.parametrize("provider", PROVIDERS)
def test_key_never_in_logs_outputs_or_errors(tmp_path, server, provider, caplog):
    caplog.set_level(logging.DEBUG)
    server.script = [("echo", 400)]  # a server that repeats the credentials in its error
    with pytest.raises(KmedqaError) as exc:
        run(tmp_path, server, provider)
    assert KEYS[provider] not in str(exc.value) and "REDACTED" in str(exc.value)
    server.script = [("echo", 503), ("refuse", None)]
    _, rows = run(tmp_path, server, provider)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) >= 3  # the output and two cache entries
    for p in written:
        assert KEYS[provider] not in p.read_text(encoding="utf-8", errors="replace"), p
    assert KEYS[provider] not in caplog.text and "REDACTED" in caplog.text


@pytest.mark.parametrize("provider", PROVIDERS)
def test_401_stops_naming_the_env_var(tmp_path, server, provider):
    server.script = [("status", 401)]
    with pytest.raises(KmedqaError, match=ENVS[provider]):
        run(tmp_path, server, provider)
    assert server.n_posts == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_timeout_is_retried(tmp_path, server, provider):
    server.script = [("sleep", 1.5)]
    settings = {**SETTINGS, "timeout_s": 0.5}
    sleeps = []
    _, rows = run(tmp_path, server, provider, sleeps=sleeps, settings=settings)
    assert [r["status"] for r in rows] == ["ok", "ok"] and len(sleeps) == 1


def test_missing_key_and_closed_gate(tmp_path, server, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY")
    with pytest.raises(ConfigError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        make_backend(spec(server, "gemini"), SETTINGS)
    monkeypatch.setenv("GOOGLE_API_KEY", KEYS["gemini"])
    assert make_backend(spec(server, "gemini"), SETTINGS).model == "gemini-model"
    with pytest.raises(ConfigError, match="may_leave_machine"):
        run(tmp_path, server, "gemini", may_leave_machine=False)
    assert server.n_posts == 0


def thinking_budget(generation_config):
    """As the SDK serializes it (this google-genai version writes the inner key in snake case)."""
    tc = generation_config["thinkingConfig"]
    return tc.get("thinkingBudget", tc.get("thinking_budget"))


def test_gemini_thinking_budget_and_max_output_tokens(tmp_path, server):
    run(tmp_path, server, "gemini", model_spec=spec(server, "gemini", thinking_budget=-1))
    cfg = server.requests[0][3]["generationConfig"]
    assert thinking_budget(cfg) == -1
    assert cfg["maxOutputTokens"] == 256 + 24576
    run(
        tmp_path,
        server,
        "gemini",
        model_spec=spec(server, "gemini", thinking_budget=512, temperature=0),
    )
    cfg = server.requests[-1][3]["generationConfig"]
    assert cfg["maxOutputTokens"] == 256 + 512 and cfg["temperature"] == 0


def test_gemini_prompt_format_is_one_user_prompt_of_four_blocks_and_shots():
    fmt = get_format("mtsdialog_gemini_3shot")
    its = items(5)
    msgs = build_messages(its[0], fmt, its[1:4])
    assert [m["role"] for m in msgs] == ["user"]
    text = msgs[0]["content"]
    blocks = ["[Global Instruction]", "[Critical Constraint]", "[Available Codes]", "[Examples]"]
    pos = [text.index(b) for b in [*blocks, "[Test Case]"]]
    assert pos == sorted(pos)
    assert "'#'" in text and "no additional text" in text
    assert text.count("Output: GENHX#") == 3  # the shots' references, CODE#summary
    assert text.rstrip().endswith("day 0.\nOutput:")
    codes = text.split("[Available Codes]")[1].split("[Examples]")[0]
    assert len([c for c in codes.split(",") if c.strip()]) == 20


def base_config():
    return {
        "study": "hosted-gate",
        "seed": 42,
        "datasets": {
            "mts": {"loader": "mtsdialog", "path": "x", "format": "mtsdialog", "split": {}},
            "aihub": {"loader": "aihub", "path": "y", "format": "aihub", "split": {}},
        },
        "models": {"gem": {"source": "api", "provider": "gemini", "id": "gemini-2.5-flash"}},
        "runs": {"gem": ["icl"]},
        "evaluation": {"eval_sets": {"mts-test": {"dataset": "mts", "split": "test"}}},
    }


def test_config_gate_names_dataset_and_key():
    cfg = base_config()
    with pytest.raises(ConfigError) as exc:
        check_config(cfg)
    assert "datasets.mts.may_leave_machine: true" in str(exc.value)
    assert "runs.gem" in str(exc.value) and "mts-test" in str(exc.value)
    cfg["datasets"]["mts"]["may_leave_machine"] = True
    check_config(cfg)
    # icl shots from a dataset that may not leave: stops too
    cfg["evaluation"]["eval_sets"]["mts-test"]["shots_from"] = "aihub"
    with pytest.raises(ConfigError, match="'aihub'.*datasets.aihub.may_leave_machine"):
        check_config(cfg)
    cfg["runs"]["gem"] = ["base"]  # base sends no shots
    check_config(cfg)


def test_config_rejects_finetuning_an_api_model_and_api_keys_elsewhere():
    cfg = base_config()
    cfg["datasets"]["mts"]["may_leave_machine"] = True
    cfg["train_sets"] = {"mts": ["mts"]}
    cfg["training"] = {}
    cfg["runs"]["gem"] = ["icl", "ft-mts"]
    with pytest.raises(ConfigError, match=r"runs.gem: 'ft-mts' fine-tunes a hosted model"):
        check_config(cfg)
    cfg = base_config()
    cfg["datasets"]["mts"]["may_leave_machine"] = True
    cfg["models"]["local"] = {"source": "hub", "id": "x/y", "thinking_budget": 0}
    with pytest.raises(ConfigError, match="models.local.thinking_budget: only for source: api"):
        check_config(cfg)


def test_schema_requires_provider_for_api(repo_root):
    from kmedqa.workflow import validate_config

    cfg = yaml_config(repo_root)
    cfg["models"]["gem"] = {"source": "api", "id": "gemini-2.5-flash"}
    with pytest.raises(ConfigError, match="provider"):
        validate_config(cfg, str(repo_root / "schemas" / "config.schema.yaml"))


def yaml_config(repo_root):
    import yaml

    return yaml.safe_load((repo_root / "config.yaml").read_text(encoding="utf-8"))


def test_study_config_has_the_gemini_run(repo_root):
    import yaml

    from kmedqa.workflow import validate_config

    cfg = yaml.safe_load(
        (repo_root / "experiments" / "clinical_notes.yaml").read_text(encoding="utf-8")
    )
    validate_config(cfg, str(repo_root / "schemas" / "config.schema.yaml"))
    assert cfg["runs"]["gemini-2.5-flash"] == ["icl"]
    assert cfg["models"]["gemini-2.5-flash"]["format"] == "mtsdialog_gemini_3shot"
    assert cfg["evaluation"]["generation"]["api"]["max_retries"] == 5  # schema default
    leaky = copy.deepcopy(cfg)
    leaky["datasets"]["mts"]["may_leave_machine"] = False
    with pytest.raises(ConfigError, match="datasets.mts.may_leave_machine"):
        validate_config(leaky, str(repo_root / "schemas" / "config.schema.yaml"))


def test_judge_skips_and_counts_unanswered_lines(tmp_path):
    its = items(3)
    gens = {
        "gem:icl": [
            {"id": it["id"], "run": "gem:icl", "output": "GENHX#x", "status": "ok"} for it in its
        ]
    }
    gens["gem:icl"][1].update(status="refused", output="")
    summary = judge_run(
        its,
        gens,
        {"backend": "none", "sample": "all"},
        tmp_path / "cache",
        tmp_path / "j.jsonl",
        tmp_path / "j.json",
    )
    assert summary["not_answered_skipped"] == {"gem:icl": 1}
    assert summary["n_items"] == 2 and "mts-1" not in summary["item_ids"]
    assert summary["items_without_generation"] == {"gem:icl": 0}


def test_compare_drops_and_counts_unanswered_items():
    a = [{"id": f"i{i}", "section_correct": i % 2, "status": "ok"} for i in range(6)]
    b = [dict(r, section_correct=1) for r in a]
    b[2].update(section_correct=None, status="refused")
    out = compare_paired(a, b, "section_correct", n_resamples=200)
    assert out["n"] == 5 and out["n_not_answered"] == 1
    b[2]["status"] = "ok"  # null for another reason is still an error
    with pytest.raises(Exception, match="null in this file"):
        compare_paired(a, b, "section_correct", n_resamples=200)


def test_environment_table_names_the_hosted_model(tmp_path, server):
    from kmedqa.paper.training_tables import environment_table

    stats, _ = run(tmp_path, server, "gemini")
    t = environment_table({"python": "3.11"}, [{"run": "gem:icl", **stats}])
    cell = dict(t.rows)["inference base, gem:icl"]
    assert cell.startswith("hosted: gemini API, model gemini-model") and "USD" in cell
