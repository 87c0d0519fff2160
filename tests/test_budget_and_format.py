"""Token budgets are recorded per output (truncation rate) and an eval set's declared prompt
format is the one generation and scoring use."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kmedqa.errors import InputError
from kmedqa.generation import generate
from kmedqa.generation.settings import hit_budget
from kmedqa.items import make_item
from kmedqa.scoring import score_items, summarize

sys.path.insert(0, str(Path(__file__).parent))
from helpers.generation import with_settings  # noqa: E402

from kmedqa.testing import tiny_model_json  # noqa: E402

OPTS = ["메토트렉세이트", "아달리무맙", "아세트아미노펜"]


def _kmm(i: int) -> dict:
    return make_item(
        id=f"k{i}",
        dataset="kormedmcqa",
        task="mcq",
        domain="doctor",
        question=f"TNF 억제제는? {i}",
        options=OPTS,
        answer="아달리무맙",
        answer_index=1,
        meta={"format": "kormedmcqa"},
    )


def _gen_line(iid: str, output: str, n: int | None, budget: int | None, **extra) -> dict:
    line = {"id": iid, "run": "m:base", "output": output, "n_new_tokens": n}
    if budget is not None:
        line["max_new_tokens"] = budget
    return {**line, **extra}


def test_hit_budget_rule():
    assert hit_budget(8, 8) and hit_budget(9, 8)
    assert not hit_budget(7, 8)
    assert not hit_budget(8, 8, cut_by_stop_string=True)


def test_truncation_is_counted_per_item_and_per_group():
    items = [_kmm(i) for i in range(5)]
    gens = [
        _gen_line("k0", "B", 1, 8),  # ended by itself
        _gen_line("k1", "정답은 B 입니다 왜냐하면", 8, 8),  # stopped at its budget
        _gen_line("k2", "B", 8, 8, hit_budget=False),  # the engine says: cut at a stop string
        _gen_line("k3", "B", 3, None),  # no budget recorded: unknown, not 0
        _gen_line("k4", "정답은", 24, 24),
    ]
    rows = score_items(items, gens, eval_set="e")
    assert [r["hit_budget"] for r in rows] == [0, 1, 0, None, 1]
    assert [r["max_new_tokens"] for r in rows] == [8, 8, 8, None, 24]
    overall = next(s for s in summarize(rows) if s["group"] == "overall")
    assert overall["truncation_rate"] == pytest.approx(2 / 4)
    assert overall["n_truncated"] == 2 and overall["n_hit_budget"] == 4
    with pytest.raises(InputError, match="hit_budget"):
        score_items(items[:1], [_gen_line("k0", "B", 1, 8, hit_budget="yes")])


def test_truncation_rate_is_a_column_of_the_main_results_table():
    from kmedqa.paper.results_tables import main_results_table

    rows = score_items([_kmm(0), _kmm(1)], [_gen_line("k0", "B", 8, 8), _gen_line("k1", "B", 1, 8)])
    for r in rows:
        r["eval_set"] = "e"
    t = main_results_table(summarize(rows), "note")
    assert t.columns[-1] == "hit budget"
    assert t.rows[0][-1] == 0.5


def test_scoring_uses_the_eval_sets_format_and_refuses_a_stale_generation():
    item = _kmm(0)  # its own format is lettered (kormedmcqa)
    numbered = [_gen_line("k0", "2) 아달리무맙", 4, 24, format="kormedmcqa_numbered")]
    row = score_items([item], numbered, eval_format="kormedmcqa_numbered")[0]
    assert (row["format"], row["mcq_strict"], row["format_ok"]) == ("kormedmcqa_numbered", 1, 1)
    # the same output read as the item's own (letter) format is not in the expected form
    lettered = score_items([item], [{**numbered[0], "format": None}])[0]
    assert lettered["format"] == "kormedmcqa" and lettered["format_ok"] == 0
    with pytest.raises(InputError, match="declares 'kormedmcqa_numbered'"):
        score_items(
            [item], [{**numbered[0], "format": "kormedmcqa"}], eval_format="kormedmcqa_numbered"
        )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_model_json(tmp_path_factory.mktemp("tiny"))


def _generate(tiny, items, tmp_path, **kw):
    out = tmp_path / "o.jsonl"
    generate(
        model_json=str(tiny), items=items, formats={}, run="m:base", eval_set="e",
        out_path=str(out), cache_dir=str(tmp_path / "c"), progress=False,
        **with_settings(kw, device="cpu", batch_size=4),
    )  # fmt: skip
    return [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]


def test_generation_records_budget_and_the_eval_sets_format(tiny, tmp_path):
    items = [_kmm(i) for i in range(4)]
    own = _generate(tiny, items, tmp_path, max_new_tokens={"mcq": 3})
    assert {r["format"] for r in own} == {"kormedmcqa"}
    assert all(r["max_new_tokens"] == 3 for r in own)
    assert all(r["hit_budget"] == (r["n_new_tokens"] == 3) for r in own)
    assert any(r["hit_budget"] for r in own)  # a random tiny model rarely stops in 3 tokens
    over = _generate(
        tiny, items, tmp_path, max_new_tokens={"mcq": 3}, format_override="kormedmcqa_numbered"
    )
    assert {r["format"] for r in over} == {"kormedmcqa_numbered"}
    assert {r["prompt_sha"] for r in over}.isdisjoint({r["prompt_sha"] for r in own})
    rows = score_items(items, over, eval_format="kormedmcqa_numbered")
    assert {r["format"] for r in rows} == {"kormedmcqa_numbered"}
    # a new budget is a new generation, not a cached answer made under another budget
    longer = _generate(tiny, items, tmp_path, max_new_tokens={"mcq": 5})
    assert all(r["max_new_tokens"] == 5 for r in longer)
    assert max(r["n_new_tokens"] for r in longer) > 3


STUDIES = ["essential_medical", "gemma2_kormedmcqa", "ko_gemma2_9b", "clinical_notes"]


@pytest.mark.parametrize("study", STUDIES)
def test_study_budgets_do_not_cut_real_answers(study):
    """Every task an eval set of a study asks for gets at least 1,024 new tokens."""
    import yaml

    from kmedqa.prompts import get_format

    root = Path(__file__).resolve().parents[1]
    cfg = yaml.safe_load((root / "experiments" / f"{study}.yaml").read_text(encoding="utf-8"))
    override = cfg["evaluation"].get("generation", {}).get("max_new_tokens", {})
    for name, es in cfg["evaluation"]["eval_sets"].items():
        fmt = get_format(es.get("format") or cfg["datasets"][es["dataset"]]["format"])
        for task, budget in fmt["max_new_tokens"].items():
            assert override.get(task, budget) >= 1024, (name, task)
