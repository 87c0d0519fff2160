"""The generation engine on a tiny random Gemma 3: resume, adapters, stops, budgets, shots."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers.generation import with_settings  # noqa: E402

from kmedqa import prompts as prompts_mod
from kmedqa.errors import ConfigError
from kmedqa.generation import (
    batch_plan,
    common_prefix_len,
    cut_at_stop,
    generate,
    render_prompts,
    shared_prefix_len,
)
from kmedqa.io import write_jsonl
from kmedqa.items import make_item
from kmedqa.testing import tiny_model_json

FORMATS = {"aihub71875": "aihub", "kormedmcqa": "kormedmcqa"}
SRC = str(Path(__file__).resolve().parents[1] / "src")
# small token budgets keep the file fast; each test that checks budgets sets its own
SMALL = {
    "aihub": {"max_new_tokens": {"mcq": 4, "short": 6, "descriptive": 8}},
    "kormedmcqa": {"max_new_tokens": {"mcq": 3}},
}


def patched_tasks(changes: dict) -> dict:
    tasks = json.loads(json.dumps(prompts_mod.load_tasks()))
    for name, upd in changes.items():
        tasks["formats"][name].update(upd)
    return tasks


@pytest.fixture(autouse=True)
def small_budgets(monkeypatch):
    tasks = patched_tasks(SMALL)
    monkeypatch.setattr(prompts_mod, "load_tasks", lambda: tasks)


def _items(n: int, *, prefix: str = "q") -> list[dict]:
    """Items of three tasks (three token budgets) and two datasets (two formats)."""
    stems = [
        "류마티스 관절염 치료에 쓰이는 약은?",
        "소아 발열 환자의 해열제는?",
        "응급의학과 환자 분류는?",
    ]
    out = []
    for i in range(n):
        task = ("mcq", "short", "descriptive")[i % 3]
        q = f"{stems[i % 3]} {i} " + "정답은 " * (i % 5)
        if i % 4 == 3:  # a KorMedMCQA-style item
            out.append(
                make_item(
                    id=f"{prefix}{i:02d}",
                    dataset="kormedmcqa",
                    task="mcq",
                    question=q,
                    options=["메토트렉세이트", "아달리무맙", "아세트아미노펜"],
                    answer="아달리무맙",
                    answer_index=1,
                )
            )
        elif task == "mcq":
            out.append(
                make_item(
                    id=f"{prefix}{i:02d}",
                    dataset="aihub71875",
                    task="mcq",
                    question=q + " 1) 메토트렉세이트 2) 아달리무맙",
                    options=["메토트렉세이트", "아달리무맙"],
                    answer="2) 아달리무맙",
                    answer_index=1,
                )
            )
        else:
            out.append(
                make_item(
                    id=f"{prefix}{i:02d}",
                    dataset="aihub71875",
                    task=task,
                    question=q,
                    answer="아세트아미노펜",
                )
            )
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_model_json(tmp_path_factory.mktemp("tiny"))


def _gen(tiny, items, out, cache, **kw):
    return generate(
        model_json=str(tiny), items=items, formats=FORMATS, run="r", eval_set="e",
        out_path=str(out), cache_dir=str(cache), progress=False,
        **with_settings(kw, device="cpu", batch_size=4),
    )  # fmt: skip


def _rows(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


class CountCalls:
    """Wraps the transformers runner's batch call to record the size of every batch."""

    def __init__(self, monkeypatch):
        from kmedqa.generation.runners import HFRunner

        self.sizes: list[int] = []
        real = HFRunner.__call__

        def wrapped(runner, seqs, *a, **kw):
            self.sizes.append(len(seqs))
            return real(runner, seqs, *a, **kw)

        monkeypatch.setattr(HFRunner, "__call__", wrapped)


# --------------------------------------------------------------------------- resume

CHILD = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {src!r})
    from kmedqa import prompts
    from kmedqa.generation import GenerationSettings, generate
    from kmedqa.generation.runners import HFRunner

    tasks = json.loads({tasks!r})
    prompts.load_tasks = lambda: tasks  # the parent's small budgets
    real = HFRunner.__call__
    def slow(runner, *a, **kw):  # slow each batch down so the parent can kill us mid-run
        time.sleep(0.6)
        return real(runner, *a, **kw)
    HFRunner.__call__ = slow
    items = [json.loads(line) for line in open({items!r}, encoding="utf-8")]
    generate(model_json={model_json!r}, items=items, formats={formats!r}, run="r", eval_set="e",
             out_path={out!r}, cache_dir={cache!r}, progress=False,
             settings=GenerationSettings(batch_size=4, device="cpu"))
    """
)


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0


def test_killed_run_resumes_without_recomputing(tiny, tmp_path, monkeypatch):
    items = _items(20)
    items_file = tmp_path / "items.jsonl"
    write_jsonl(items_file, items)
    cache = tmp_path / "cache"
    out = tmp_path / "killed.jsonl"
    script = CHILD.format(
        src=SRC,
        items=str(items_file),
        model_json=str(tiny),
        formats=FORMATS,
        out=str(out),
        cache=str(cache),
        tasks=json.dumps(prompts_mod.load_tasks()),
    )
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": SRC})
    try:
        deadline = time.time() + 120
        cache_file = None
        while time.time() < deadline and proc.poll() is None:
            files = list(cache.glob("*.jsonl")) if cache.exists() else []
            if files and _lines(files[0]) > 0:
                cache_file = files[0]
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert cache_file is not None, "the child wrote no cache line before it ended"
    assert proc.returncode == -signal.SIGKILL
    before = _lines(cache_file)
    assert 0 < before < 20, f"kill landed outside the run ({before} cached lines)"
    assert not out.exists()  # the output is written only when every item is done

    counter = CountCalls(monkeypatch)
    stats = _gen(tiny, items, out, cache)
    assert stats["n_cached"] == before
    assert stats["n_generated"] == 20 - before
    assert sum(counter.sizes) == 20 - before  # no finished item was generated again
    assert _lines(cache_file) == 20  # the rerun appended only the missing items
    cached_ids = [
        json.loads(line)["id"] for line in cache_file.read_text(encoding="utf-8").splitlines()
    ]
    assert sorted(cached_ids) == sorted(i["id"] for i in items)

    fresh = tmp_path / "fresh.jsonl"
    _gen(tiny, items, fresh, tmp_path / "fresh-cache")
    assert out.read_bytes() == fresh.read_bytes()

    # and a third run computes nothing at all
    counter.sizes.clear()
    stats = _gen(tiny, items, tmp_path / "third.jsonl", cache)
    assert stats["n_generated"] == 0 and counter.sizes == []
    assert (tmp_path / "third.jsonl").read_bytes() == fresh.read_bytes()


# --------------------------------------------------------------------------- adapters


def _random_adapter(tiny, outdir: Path, r: int = 4) -> Path:
    """A LoRA adapter on the tiny model whose B matrices are random, so that it matters."""
    import torch
    from peft import LoraConfig, get_peft_model

    from kmedqa.models import load_model, read_model_info

    torch.manual_seed(1)
    base = load_model(read_model_info(tiny), device="cpu")
    cfg = LoraConfig(
        r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"],
        init_lora_weights=False, task_type="CAUSAL_LM",
    )  # fmt: skip
    peft_model = get_peft_model(base, cfg)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    peft_model.save_pretrained(outdir)
    return outdir


def test_merged_and_unmerged_adapter_agree(tiny, tmp_path):
    adapter = _random_adapter(tiny, tmp_path / "adapter")
    items = _items(9)
    _gen(tiny, items, tmp_path / "base.jsonl", tmp_path / "c")
    _gen(tiny, items, tmp_path / "lora.jsonl", tmp_path / "c", adapter_dir=str(adapter))
    _gen(
        tiny,
        items,
        tmp_path / "merged.jsonl",
        tmp_path / "c",
        adapter_dir=str(adapter),
        merge_adapter=True,
    )
    base_out = [r["output"] for r in _rows(tmp_path / "base.jsonl")]
    lora_out = [r["output"] for r in _rows(tmp_path / "lora.jsonl")]
    merged_out = [r["output"] for r in _rows(tmp_path / "merged.jsonl")]
    assert lora_out != base_out, "the adapter changed nothing: the test would prove nothing"
    assert merged_out == lora_out
    assert (
        len(list((tmp_path / "c").glob("*.jsonl"))) == 3
    )  # base, adapter, merged: three cache keys


# --------------------------------------------------------------------------- stops and budgets


def _patch_formats(monkeypatch, **changes):
    tasks = patched_tasks(changes)
    monkeypatch.setattr(prompts_mod, "load_tasks", lambda: tasks)


def test_per_task_budgets_are_respected(tiny, tmp_path, monkeypatch):
    budgets = {"mcq": 3, "short": 5, "descriptive": 9}
    _patch_formats(
        monkeypatch, aihub={"max_new_tokens": budgets}, kormedmcqa={"max_new_tokens": {"mcq": 2}}
    )
    items = _items(24)
    counter = CountCalls(monkeypatch)
    _gen(tiny, items, tmp_path / "o.jsonl", tmp_path / "c")
    rows = {r["id"]: r for r in _rows(tmp_path / "o.jsonl")}
    seen: dict[int, list[int]] = {}
    for item in items:
        budget = 2 if item["dataset"] == "kormedmcqa" else budgets[item["task"]]
        seen.setdefault(budget, []).append(rows[item["id"]]["n_new_tokens"])
    assert sorted(seen) == [2, 3, 5, 9]
    for budget, ns in seen.items():
        assert all(1 <= n <= budget for n in ns), (budget, ns)
        assert max(ns) == budget, (budget, ns)  # the budget itself, not a shared or default one
    assert sum(counter.sizes) == len(items) and max(counter.sizes) <= 4


def test_batch_plan_fills_batches_in_budget_order():
    prompts = [{"id": f"i{k}", "max_new_tokens": (8, 24, 128)[k % 3]} for k in range(23)]
    lengths = [(k * 7) % 13 + 1 for k in range(23)]
    plan = batch_plan(prompts, lengths, 4)
    flat = [i for b in plan for i in b]
    assert sorted(flat) == list(range(23))
    assert [len(b) for b in plan] == [4] * 5 + [3]  # no small batch per budget
    keys = [(prompts[i]["max_new_tokens"], -lengths[i]) for i in flat]
    assert keys == sorted(keys)  # by budget, then longest prompt first
    assert plan == batch_plan(prompts, lengths, 4)


def test_mixed_budget_batches_give_the_budget_grouped_outputs(tiny_wide, tmp_path, monkeypatch):
    """A batch that decodes to its largest budget and cuts each row at its own gives what
    generating each row alone with its own budget gives."""
    _patch_formats(monkeypatch, aihub={"max_new_tokens": {"mcq": 2, "short": 5, "descriptive": 9}})
    items = [i for i in _items(12) if i["dataset"] == "aihub71875"]
    counter = CountCalls(monkeypatch)
    _gen(tiny_wide, items, tmp_path / "mixed.jsonl", tmp_path / "c", batch_size=16)
    assert len(counter.sizes) == 1  # every budget in one batch
    _gen(tiny_wide, items, tmp_path / "alone.jsonl", tmp_path / "c", batch_size=1)
    mixed, alone = _rows(tmp_path / "mixed.jsonl"), _rows(tmp_path / "alone.jsonl")
    assert [r["output"] for r in mixed] == [r["output"] for r in alone]
    assert [r["n_new_tokens"] for r in mixed] == [r["n_new_tokens"] for r in alone]
    assert {r["n_new_tokens"] for r in mixed} >= {2, 9}


def test_stop_strings_cut_the_output(tiny, tmp_path, monkeypatch):
    _patch_formats(
        monkeypatch, aihub={"max_new_tokens": {"mcq": 24, "short": 24, "descriptive": 24}}
    )
    items = [i for i in _items(12) if i["dataset"] == "aihub71875"]
    _gen(tiny, items, tmp_path / "free.jsonl", tmp_path / "c1")
    free = {r["id"]: r["output"] for r in _rows(tmp_path / "free.jsonl")}
    # a stop string taken from the middle of one free output (two non-space characters)
    longest = max(free.values(), key=len)
    assert len(longest) > 6
    k = next(
        j for j in range(len(longest) // 2, len(longest) - 1) if not longest[j : j + 2].isspace()
    )
    stop = longest[k : k + 2]
    _patch_formats(
        monkeypatch,
        aihub={"max_new_tokens": {"mcq": 24, "short": 24, "descriptive": 24}, "stop": [stop]},
    )
    stats = _gen(
        tiny, items, tmp_path / "stop.jsonl", tmp_path / "c2", batch_size=len(items),
        prompt_lookup=0,
    )  # fmt: skip
    cut = {r["id"]: r["output"] for r in _rows(tmp_path / "stop.jsonl")}
    # one token per step: a row is fed once per token after its first (the prefill's);
    # finished rows leave the batch, so the one batch takes as many steps as its longest
    # row needs
    n_new = [r["n_new_tokens"] for r in _rows(tmp_path / "stop.jsonl")]
    assert stats["decode_row_steps"] == sum(n - 1 for n in n_new)
    assert stats["decode_steps"] == max(n_new) - 1 and min(n_new) < max(n_new)
    n_cut = 0
    for iid, text in free.items():
        assert cut[iid] == cut_at_stop(text, [stop]).strip()
        assert stop not in cut[iid]
        n_cut += stop in text
    assert n_cut >= 1 and cut != free


def test_cut_at_stop_takes_the_earliest():
    assert cut_at_stop("abc\n\nQ: x###", ["###", "\n\nQ:"]) == "abc"
    assert cut_at_stop("abc", []) == "abc"
    assert cut_at_stop("abc", ["zz"]) == "abc"


# --------------------------------------------------------------------------- ICL shots


def test_icl_shots_are_deterministic(tiny, tmp_path):
    from kmedqa.models import load_tokenizer, read_model_info

    tok = load_tokenizer(read_model_info(tiny))
    pool = _items(15, prefix="train")
    evals = _items(6)
    a = render_prompts(evals, tok, FORMATS, shots_pool=pool, k=2, seed=7)
    # the shots of an item depend on the seed, the item and the pool, not on the other eval items
    b = render_prompts(list(reversed(evals))[:4], tok, FORMATS, shots_pool=pool, k=2, seed=7)
    c = render_prompts(evals, tok, FORMATS, shots_pool=pool, k=2, seed=8)
    zero = render_prompts(evals, tok, FORMATS)
    by_id = {p["id"]: p for p in b}
    assert len(by_id) == 4
    assert all(p["shots"] == by_id[p["id"]]["shots"] for p in a if p["id"] in by_id)
    assert all(p["text"] == by_id[p["id"]]["text"] for p in a if p["id"] in by_id)
    assert [p["shots"] for p in a] != [p["shots"] for p in c]  # the seed matters
    pool_by_id = {p["id"]: p for p in pool}
    for p, item, z in zip(a, evals, zero, strict=True):
        assert len(p["shots"]) == 2 and len(set(p["shots"])) == 2
        for sid in p["shots"]:
            assert pool_by_id[sid]["task"] == item["task"]  # same task when the pool has enough
            assert pool_by_id[sid]["question"].strip() in p["text"]
        assert p["prompt_sha"] != z["prompt_sha"]
    # and the engine writes the same shots and outputs on a second, uncached run
    for name in ("one", "two"):
        _gen(
            tiny,
            evals,
            tmp_path / f"{name}.jsonl",
            tmp_path / f"c-{name}",
            shots_pool=pool,
            k=2,
            shots_seed=7,
        )
    one = _rows(tmp_path / "one.jsonl")
    assert [r["shots"] for r in one] == [p["shots"] for p in a]
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()


# --------------------------------------------------------------------------- shared prefix


@pytest.fixture(scope="module")
def tiny_wide(tmp_path_factory) -> Path:
    """The tiny model with a sliding window longer than any test prompt."""
    return tiny_model_json(tmp_path_factory.mktemp("tiny-wide"), "tiny-wide", sliding_window=4096)


def test_shared_prefix_gives_the_unbatched_outputs(tiny_wide, tmp_path):
    items = [i for i in _items(12) if i["dataset"] == "aihub71875"]  # one system prompt
    shared = _gen(tiny_wide, items, tmp_path / "shared.jsonl", tmp_path / "c", batch_size=4)
    plain = _gen(
        tiny_wide, items, tmp_path / "plain.jsonl", tmp_path / "c", batch_size=4, share_prefix=False
    )
    single = _gen(tiny_wide, items, tmp_path / "single.jsonl", tmp_path / "c", batch_size=1)
    assert shared["prefix_tokens_shared"] > 0
    assert plain["prefix_tokens_shared"] == 0 and single["prefix_tokens_shared"] == 0
    assert len({shared["cache"], plain["cache"], single["cache"]}) == 3
    rows = {name: _rows(tmp_path / f"{name}.jsonl") for name in ("shared", "plain", "single")}
    assert rows["shared"] == rows["plain"] == rows["single"]


def test_shared_prefix_guards(tiny, tiny_wide):
    from kmedqa.models import load_model, read_model_info

    assert common_prefix_len([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert common_prefix_len([[5, 6], [5, 6]]) == 2
    wide = load_model(read_model_info(tiny_wide), device="cpu")
    narrow = load_model(read_model_info(tiny), device="cpu")  # sliding window 128
    pre = list(range(10, 40))
    seqs = [pre + [1, 2, 3], pre + [4, 5], pre + [6]]
    assert shared_prefix_len(wide, seqs, 8) == 30
    assert shared_prefix_len(wide, [pre + [1], pre], 8) == 29  # every row keeps a token to feed
    assert shared_prefix_len(wide, seqs[:1], 8) == 0  # one row: nothing to share
    assert shared_prefix_len(wide, [s[20:] for s in seqs], 8) == 0  # too short to pay off
    assert shared_prefix_len(narrow, seqs, 8) == 30
    assert shared_prefix_len(narrow, seqs, 100) == 0  # would outgrow the sliding window


def test_config_budgets_override_the_format(tiny, tmp_path):
    items = _items(12)
    _gen(tiny, items, tmp_path / "o.jsonl", tmp_path / "c", max_new_tokens={"mcq": 2})
    rows = {r["id"]: r for r in _rows(tmp_path / "o.jsonl")}
    assert all(rows[it["id"]]["n_new_tokens"] <= 2 for it in items if it["task"] == "mcq")
    assert any(rows[it["id"]]["n_new_tokens"] > 2 for it in items if it["task"] != "mcq")


@pytest.mark.parametrize("rank, max_rank", [(4, 8), (12, 16)])
def test_vllm_backend_drives_vllms_api_like_the_hf_backend(
    tiny, tmp_path, monkeypatch, rank, max_rank
):
    """With a stand-in for vLLM (tests/helpers/fake_vllm.py: vLLM's offline API computed by
    transformers), the vllm backend sends the HF backend's prompt token ids, budgets and
    stop ids, serves the adapter through LoRARequest, and gets the same outputs."""
    from helpers import fake_vllm
    from transformers import AutoTokenizer

    adapter = _random_adapter(tiny, tmp_path / "adapter", r=rank)
    items = _items(7)
    _gen(tiny, items, tmp_path / "hf.jsonl", tmp_path / "c", adapter_dir=str(adapter))
    calls = fake_vllm.install(monkeypatch)
    stats = _gen(
        tiny, items, tmp_path / "vllm.jsonl", tmp_path / "c", adapter_dir=str(adapter),
        backend="vllm",
    )  # fmt: skip
    assert stats["backend"] == "vllm" and stats["n_generated"] == len(items)
    (llm,) = calls["LLM"]
    info = json.loads(tiny.read_text())
    assert llm["model"] == info["path"] and llm["enable_lora"] and llm["dtype"] == "float32"
    assert llm["max_lora_rank"] == max_rank
    assert all(c["lora_request"].lora_path == str(adapter) for c in calls["generate"])
    params = [sp for c in calls["generate"] for sp in c["params"]]
    assert len(params) == len(items)  # one SamplingParams per prompt
    budgets = {sp.max_tokens for sp in params}
    assert len(budgets) > 1 and budgets <= {3, 4, 6, 8}  # the per-task budgets (SMALL)
    eot = AutoTokenizer.from_pretrained(info["path"]).convert_tokens_to_ids("<end_of_turn>")
    assert all(eot in sp.stop_token_ids for sp in params)
    hf, vl = _rows(tmp_path / "hf.jsonl"), _rows(tmp_path / "vllm.jsonl")
    assert [r["prompt_sha"] for r in vl] == [r["prompt_sha"] for r in hf]
    assert [r["output"] for r in vl] == [r["output"] for r in hf]
    assert [r["n_new_tokens"] for r in vl] == [r["n_new_tokens"] for r in hf]
    assert len(list((tmp_path / "c").glob("*.jsonl"))) == 2  # the backend is in the cache key


def test_vllm_lora_rank_rounds_up_to_what_vllm_accepts():
    from kmedqa.generation import vllm_lora_rank

    assert [vllm_lora_rank(r) for r in (1, 8, 9, 64, 300, 512)] == [8, 8, 16, 64, 320, 512]
    with pytest.raises(ConfigError, match="512"):
        vllm_lora_rank(1024)


def test_vllm_backend_without_vllm_is_named(tiny, tmp_path):
    try:
        import vllm  # noqa: F401

        pytest.skip("vLLM is installed here")
    except ModuleNotFoundError:
        pass
    with pytest.raises(ConfigError, match="vLLM is not installed"):
        _gen(tiny, _items(2), tmp_path / "o.jsonl", tmp_path / "c", backend="vllm")
    with pytest.raises(ConfigError, match="unknown backend"):
        _gen(tiny, _items(2), tmp_path / "o.jsonl", tmp_path / "c", backend="tgi")


def test_lm_head_sees_a_contiguous_input_with_identical_logits(tiny):
    """An adapter-wrapped model's head gets ``hidden[:, -1:, :]`` (a strided view) with
    frozen weights, which makes ``torch.matmul`` expand the head over the batch (5 GB per
    call for Gemma 3 270M in bf16); the runner's hook hands it a contiguous copy. One
    matrix product instead of a batched one: the same logits up to float rounding."""
    import torch
    from peft import LoraConfig, get_peft_model

    from kmedqa.generation.runners import contiguous_head_input
    from kmedqa.models import load_model, read_model_info

    model = load_model(read_model_info(str(tiny)), device="cpu")
    model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).eval()
    seen: list[bool] = []
    head = model.get_output_embeddings()
    ids = torch.randint(5, 100, (3, 9))
    with torch.inference_mode():
        before = model(input_ids=ids, logits_to_keep=1).logits
        contiguous_head_input(model)
        contiguous_head_input(model)  # a second call adds no second hook
        head.register_forward_pre_hook(lambda mod, args: seen.append(args[0].is_contiguous()))
        after = model(input_ids=ids, logits_to_keep=1).logits
    assert seen == [True]
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    assert len(head._forward_pre_hooks) == 2
