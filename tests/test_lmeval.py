"""lm-evaluation-harness 0.4.13 as the oracle of kmedqa's compat format ``kormedmcqa_lmeval``.

The test writes KorMedMCQA-shaped local files (a test and a fewshot split), runs the
harness's own ``kormedmcqa`` v3 task on them (a verbatim copy with ``dataset_path:
json``: its doc_to_text, fewshot_config, ``until``, ``utils.ExtractChoiceFilter`` and
``exact_match``) through ``simple_evaluate`` and its HF backend on a tiny model, and
asserts that kmedqa's engine with the compat format gives, on every item, the same
prompt string, the same generated text and the same correctness — zero-shot and
few-shot, with and without the chat template. Then ``kmedqa import lm-eval`` reads the
samples as ``--log_samples`` writes them and ``kmedqa compare`` pairs two harness runs.

The budget is cut from the task's 1,024 new tokens to 24 in both tools (the harness's
``gen_kwargs``, kmedqa's per-task budget) so that the random tiny model, which never
stops by itself, keeps the file fast; one case adds stop strings taken from the model's
own outputs so that stopping during decoding is exercised against the harness's.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import lm_eval  # noqa: E402,F401  (the oracle: kmedqa's test extra pins lm-eval==0.4.13)
import pytest

import kmedqa.prompts as prompts_mod
from kmedqa.cli import main as kmedqa_main
from kmedqa.data.kormedmcqa import row_to_item
from kmedqa.generation import GenerationSettings, generate, render_prompts
from kmedqa.interop.lmeval import (
    import_samples,
    run_harness,
    sample_context,
    sample_output,
    write_local_task,
)
from kmedqa.io import read_jsonl, write_jsonl
from kmedqa.metrics.mcq import lm_eval_extract
from kmedqa.scoring import score_items
from kmedqa.testing import tiny_model_json

BUDGET = 24
TASK = "kmm_local"


def _row(i: int, **kw) -> dict:
    row = {
        "subject": "doctor",
        "year": 2020,
        "period": 1 + i % 2,
        "q_number": i + 1,
        "question": f"  {i}세 환자의 류마티스 관절염 치료에 쓰이는 약은? 정답은 ",  # stripped by both
        "A": "메토트렉세이트",
        "B": "아달리무맙",
        "C": "아세트아미노펜",
        "D": "소아 발열",
        "E": "" if i % 3 == 0 else "응급의학과",  # an empty E: printed "E. " by the harness
        "answer": 1 + i % 4,
        "cot": "",
    }
    row.update(kw)
    return row


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import torch

    from kmedqa.models import load_model, load_tokenizer, read_model_info

    root = tmp_path_factory.mktemp("lmeval")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 32-wide model: threads only contend
    model_json = tiny_model_json(root / "tiny")
    info = read_model_info(model_json)
    model, tok = load_model(info, device="cpu"), load_tokenizer(info)
    test_rows = [_row(i) for i in range(6)]
    shot_rows = [_row(i, year=2019) for i in (7, 9, 11)]
    write_jsonl(root / "test.jsonl", test_rows)
    write_jsonl(root / "fewshot.jsonl", shot_rows)
    task_dir = write_local_task(
        root / "tasks", TASK, {"test": root / "test.jsonl", "fewshot": root / "fewshot.jsonl"}
    )
    items = [
        row_to_item(r, exam="doctor", split="test", file="test.jsonl", row_number=n)
        for n, r in enumerate(test_rows)
    ]
    shots = [  # the few-shot pool in the split's row order: first_n takes the first k
        row_to_item(r, exam="doctor", split="fewshot", file="fewshot.jsonl", row_number=n)
        for n, r in enumerate(shot_rows)
    ]
    yield {
        "root": root,
        "model_json": str(model_json),
        "model": model,
        "tok": tok,
        "task_dir": task_dir,
        "items": items,
        "shots": shots,
    }
    torch.set_num_threads(threads)


def _kmedqa(s, fmt: str, k: int, out: Path) -> list[dict]:
    generate(
        model_json=s["model_json"], items=s["items"], formats={}, run="r", eval_set="e",
        out_path=str(out), cache_dir=str(out.parent / f"cache-{out.stem}"), settings=GenerationSettings(batch_size=4, device="cpu", max_new_tokens={"mcq": BUDGET}),
        progress=False, shots_pool=s["shots"], k=k, model=s["model"],
        tokenizer=s["tok"], format_override=fmt,
    )  # fmt: skip
    return read_jsonl(out)


def _compare(s, fmt: str, k: int, chat: bool, tag: str, until: list[str] | None = None):
    gen_kwargs = {"max_gen_toks": BUDGET, **({"until": until} if until else {})}
    samples, _ = run_harness(
        s["model"], s["tok"], s["task_dir"], TASK, batch_size=4, num_fewshot=k,
        apply_chat_template=chat, gen_kwargs=gen_kwargs,
    )  # fmt: skip
    assert len(samples) == len(s["items"])
    gens = _kmedqa(s, fmt, k, s["root"] / f"{tag}.jsonl")
    prompts = render_prompts(
        s["items"], s["tok"], {}, shots_pool=s["shots"], k=k, format_override=fmt
    )
    imported, items = import_samples(samples, task=TASK, run="harness", eval_set="e", exam="doctor")
    assert [i["id"] for i in items] == [i["id"] for i in s["items"]]  # same ids from the docs
    by_id = {g["id"]: g for g in gens}
    text = {p["id"]: p["text"] for p in prompts}
    ours = {r["id"]: r for r in score_items(s["items"], gens)}
    theirs = {r["id"]: r for r in score_items(items, imported)}
    for smp, item in zip(samples, items, strict=True):
        iid = item["id"]
        assert sample_context(smp) == text[iid], iid  # the same prompt string
        assert sample_output(smp) == by_id[iid]["output"], iid  # the same generated text
        assert smp["filtered_resps"][0] == lm_eval_extract(by_id[iid]["output"]), iid
        assert float(smp["exact_match"]) == ours[iid]["mcq_strict"] == theirs[iid]["mcq_strict"]
    return samples, gens


@pytest.mark.parametrize("k", [0, 2])
@pytest.mark.parametrize("chat", [False, True])
def test_compat_format_is_the_harness_task(setup, k, chat):
    fmt = "kormedmcqa_lmeval_chat" if chat else "kormedmcqa_lmeval"
    samples, gens = _compare(setup, fmt, k, chat, f"c{int(chat)}k{k}")
    ctx = sample_context(samples[0])
    assert ctx.startswith("<bos>") == chat  # no chat template unless asked
    assert "\nE. \n정답：" in sample_context(samples[0])  # row 0's empty option E, printed
    if k:
        shot = setup["shots"][0]
        assert ctx.count("정답： ") == k and shot["question"] in ctx  # first_n of fewshot
        assert (ctx.count("<start_of_turn>user") == k + 1) == chat  # shots as user turns
    assert all(g["n_new_tokens"] <= BUDGET for g in gens)


def test_rows_stop_during_decoding_as_the_harness_cuts(setup, monkeypatch):
    """Stop strings taken from the model's own outputs: kmedqa stops each row as it decodes
    (fewer decoded rows), and texts equal the harness's generate-then-cut."""
    free = _kmedqa(setup, "kormedmcqa_lmeval", 0, setup["root"] / "free.jsonl")
    longest = max((g["output"] for g in free), key=len)
    assert len(longest) >= 6
    stops = sorted({g["output"][2:4] for g in free if len(g["output"]) >= 6})
    tasks = json.loads(json.dumps(prompts_mod.load_tasks()))
    tasks["formats"]["kormedmcqa_lmeval"]["stop"] = stops
    monkeypatch.setattr(prompts_mod, "load_tasks", lambda: tasks)
    _, gens = _compare(setup, "kormedmcqa_lmeval", 0, False, "stops", until=stops)
    assert sum(g["n_new_tokens"] for g in gens) < sum(g["n_new_tokens"] for g in free)
    assert all(not any(s in g["output"] for s in stops) for g in gens)


def test_import_lm_eval_samples_then_compare(setup, tmp_path, capsys):
    """``--log_samples`` files of two models, written by the harness's own tracker, go
    through ``kmedqa import lm-eval``, ``kmedqa score`` and ``kmedqa compare``."""
    from lm_eval.loggers import EvaluationTracker
    from transformers import AutoModelForCausalLM

    from kmedqa.testing import build_tiny_model

    models = {"a": setup["model"]}
    for seed, name in ((1, "b"), (2, "c")):
        models[name] = AutoModelForCausalLM.from_pretrained(
            build_tiny_model(tmp_path / name, seed=seed)
        ).eval()
    files = {}
    for name, model in models.items():
        samples, _ = run_harness(
            model, setup["tok"], setup["task_dir"], TASK, batch_size=4,
            gen_kwargs={"max_gen_toks": BUDGET},
        )  # fmt: skip
        out = tmp_path / name
        tracker = EvaluationTracker(output_path=str(out / "results.json"))
        tracker.date_id = "2026-12-03T00-00-00"  # set by save_results_aggregated in the CLI
        tracker.save_results_samples(TASK, copy.deepcopy(samples))
        (files[name],) = out.glob(f"samples_{TASK}_*.jsonl")
    for name, path in files.items():
        items = tmp_path / "items.jsonl"
        gens = tmp_path / f"{name}.gen.jsonl"
        assert kmedqa_main(["import", "lm-eval", str(path), "-o", str(gens), "--items", str(items), "--run", name, "--exam", "doctor"]) == 0  # fmt: skip
        rows = read_jsonl(gens)
        assert {r["run"] for r in rows} == {name} and len(rows) == 6
        assert all(r["format"] == "kormedmcqa_lmeval" for r in rows)
        scores = tmp_path / f"{name}.scores.jsonl"
        assert kmedqa_main(["score", str(items), str(gens), "-o", str(scores)]) == 0
        harness = [json.loads(x)["exact_match"] for x in path.read_text().splitlines()]
        assert [r["mcq_strict"] for r in read_jsonl(scores)] == [float(x) for x in harness]
    capsys.readouterr()
    out = tmp_path / "cmp.json"
    args = ["compare", *(str(tmp_path / f"{n}.scores.jsonl") for n in "abc"), "-o", str(out)]
    assert kmedqa_main([*args, "--metric", "mcq_strict", "--resamples", "200"]) == 0
    comps = json.loads(out.read_text())["comparisons"]  # b vs a and c vs a: one Holm family
    assert len(comps) == 2 and all(c["family_size"] == 2 for c in comps)
    assert all(c["p_holm"] >= c[c["p_holm_of"]] for c in comps)
    assert all(c["p_holm_of"] == "p_mcnemar" for c in comps)  # exact McNemar on 0/1


def test_import_rejects_a_file_that_is_not_samples(tmp_path, capsys):
    bad = tmp_path / "samples_kormedmcqa_doctor_x.jsonl"
    bad.write_text('{"doc_id": 0, "doc": {}}\n')
    with pytest.raises(SystemExit) as err:
        kmedqa_main(["import", "lm-eval", str(bad), "-o", str(tmp_path / "g.jsonl")])
    assert err.value.code != 0
    msg = capsys.readouterr().err
    assert "not an lm-eval sample" in msg and str(bad) in msg
