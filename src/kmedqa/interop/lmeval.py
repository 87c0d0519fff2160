"""lm-evaluation-harness (0.4.13): its ``kormedmcqa`` task on local files, and its samples.

* :func:`write_local_task` copies the installed harness's ``kormedmcqa`` v3 task
  (``lm_eval/tasks/kormedmcqa/_template_yaml`` and ``utils.py``, unchanged) with
  ``dataset_path: json`` pointed at local test / fewshot files: the harness cannot reach
  the hub offline, and this is the task as defined otherwise.
* :func:`kormedmcqa_rows` writes kmedqa items back as KorMedMCQA rows (``E`` empty when
  the item has four options), with kmedqa's id in an ``id`` column.
* :func:`run_harness` runs ``lm_eval.simple_evaluate`` on an already loaded model and
  returns its ``--log_samples`` records and the seconds spent in ``generate_until``.
* :func:`import_samples` turns ``--log_samples`` records (``samples_<task>_*.jsonl``) into
  kmedqa generation lines and items, so ``kmedqa score`` / ``kmedqa compare`` give two
  harness runs a paired bootstrap CI, exact McNemar and Holm.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kmedqa.errors import ConfigError, InputError
from kmedqa.io import dumps, read_jsonl, write_jsonl
from kmedqa.items import OPTION_LETTERS, make_item
from kmedqa.prompts import prompt_sha

COMPAT_FORMAT = "kormedmcqa_lmeval"
TASK_PREFIX = "kormedmcqa_"


def harness_task_dir() -> Path:
    try:
        import lm_eval
    except ModuleNotFoundError:
        raise ConfigError(
            "lm-evaluation-harness is not installed: pip install 'lm-eval==0.4.13' "
            "(kmedqa's test extra)"
        ) from None
    return Path(lm_eval.__file__).parent / "tasks" / "kormedmcqa"


def kormedmcqa_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """KorMedMCQA-shaped rows (question, A–E, answer 1–5) of kmedqa items, ``id`` kept."""
    rows = []
    for it in items:
        opts = list(it.get("options") or [])
        if not 4 <= len(opts) <= 5 or it.get("answer_index") is None:
            raise InputError("not a KorMedMCQA item (4-5 options, an answer)", item=it["id"])
        meta = it.get("meta") or {}
        row = {"id": it["id"], "question": it["question"], "answer": it["answer_index"] + 1}
        row.update({L: (opts[i] if i < len(opts) else "") for i, L in enumerate("ABCDE")})
        for key in ("subject", "year", "period", "q_number"):
            if key in meta:
                row[key] = meta[key]
        rows.append(row)
    return rows


def write_local_task(task_dir: str | Path, name: str, data_files: dict[str, str | Path]) -> Path:
    """The harness's kormedmcqa v3 task, verbatim, reading ``data_files`` (split -> file)."""
    src = harness_task_dir()
    template = (src / "_template_yaml").read_text(encoding="utf-8")
    hub_line = "dataset_path : sean0042/KorMedMCQA"
    if hub_line not in template:
        raise ConfigError(f"{src}/_template_yaml: not the lm-eval 0.4.13 kormedmcqa task")
    files = "".join(f"    {split}: {Path(p).resolve()}\n" for split, p in data_files.items())
    local = template.replace(
        hub_line, f"dataset_path : json\ndataset_kwargs:\n  data_files:\n{files.rstrip()}"
    )
    task_dir = Path(task_dir)
    task_dir.mkdir(parents=True, exist_ok=True)
    (task_dir / "utils.py").write_text((src / "utils.py").read_text(encoding="utf-8"))
    (task_dir / f"{name}.yaml").write_text(f"{local.rstrip()}\ntask: {name}\n", encoding="utf-8")
    return task_dir


def run_harness(
    model,
    tok,
    task_dir: str | Path,
    task: str,
    *,
    batch_size: int = 16,
    num_fewshot: int = 0,
    apply_chat_template: bool = False,
    gen_kwargs: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], float]:
    """``simple_evaluate`` with the HF backend on ``model``: (samples, seconds in generate_until)."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=batch_size, device=str(model.device))
    spent = [0.0]
    inner = lm.generate_until

    def timed(requests, *a, **kw):
        t0 = time.perf_counter()
        try:
            return inner(requests, *a, **kw)
        finally:
            spent[0] += time.perf_counter() - t0

    lm.generate_until = timed
    res = simple_evaluate(
        model=lm,
        tasks=[task],
        num_fewshot=num_fewshot,
        apply_chat_template=apply_chat_template,
        fewshot_as_multiturn=apply_chat_template,
        gen_kwargs=gen_kwargs,
        log_samples=True,
        task_manager=TaskManager(include_path=str(task_dir)),
        verbosity="ERROR",
    )
    return list(res["samples"][task]), spent[0]


def sample_context(sample: dict[str, Any]) -> str:
    """The prompt string of a ``generate_until`` sample (its first argument)."""
    args = sample["arguments"]
    if isinstance(args, dict):  # the jsonl written by --log_samples
        return args["gen_args_0"]["arg_0"]
    return args[0][0]


def sample_output(sample: dict[str, Any]) -> str:
    """The generated text (cut at the stop strings, before the filters)."""
    resps = sample["resps"]
    return resps[0][0] if isinstance(resps[0], list) else resps[0]


def _exam(task: str, doc: dict[str, Any], exam: str | None = None) -> str:
    exam = (
        exam
        or doc.get("exam")
        or (task[len(TASK_PREFIX) :] if task.startswith(TASK_PREFIX) else "")
    )
    return exam or "kormedmcqa"


def doc_item(
    doc: dict[str, Any], task: str, doc_id: int, *, exam: str | None = None, file: str | None = None
):
    """A normalized item of one KorMedMCQA document (ids as kmedqa's loader makes them)."""
    from kmedqa.data.kormedmcqa import EXAMS, row_to_item

    exam = _exam(task, doc, exam)
    if doc.get("id"):
        iid = str(doc["id"])
    elif exam in EXAMS and all(k in doc for k in ("year", "period", "q_number")):
        return row_to_item(doc, exam=exam, split="test", file=file or task, row_number=doc_id)
    else:
        iid = f"{task}-{doc_id}"
    opts = [str(doc.get(L) or "").strip() for L in "ABCDE"]
    opts = opts if opts[4] else opts[:4]
    try:
        idx = int(doc["answer"]) - 1
    except (KeyError, TypeError, ValueError):
        raise InputError("doc has no answer 1-5", file=file, item=iid, field="doc.answer") from None
    return make_item(
        id=iid, dataset="kormedmcqa", task="mcq", domain=exam, q_type="객관식",
        question=str(doc["question"]).strip(), options=opts,
        answer=f"{OPTION_LETTERS[idx]}. {opts[idx]}", answer_index=idx, meta={"harness_task": task},
    )  # fmt: skip


def import_samples(
    samples: list[dict[str, Any]],
    *,
    task: str,
    run: str,
    eval_set: str,
    exam: str | None = None,
    file: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(generation lines, items) of the harness's ``--log_samples`` records of one task.

    Item ids: the doc's ``id`` column if any, else kmedqa's KorMedMCQA id
    ``kormedmcqa-{exam}-{year}-{period}-{q_number}`` (``exam`` from the argument, the doc,
    or a task named ``kormedmcqa_<exam>``), else ``<task>-<doc_id>``."""
    gens, items, seen = [], [], set()
    for n, s in enumerate(samples, 1):
        for key in ("doc", "arguments", "resps"):
            if key not in s:
                raise InputError(f"line {n}: not an lm-eval sample", file=file, field=key)
        item = doc_item(s["doc"], task, int(s.get("doc_id", n - 1)), exam=exam, file=file)
        if item["id"] in seen:
            raise InputError("two samples of the same document", file=file, item=item["id"])
        seen.add(item["id"])
        items.append(item)
        gens.append(
            {
                "id": item["id"],
                "run": run,
                "eval_set": eval_set,
                "format": COMPAT_FORMAT,
                "prompt_sha": prompt_sha(sample_context(s)),
                "output": sample_output(s),
                "n_new_tokens": None,
                "harness": {
                    "exact_match": s.get("exact_match"),
                    "filtered": s.get("filtered_resps"),
                },
            }
        )
    return gens, items


def _task_of(path: Path, samples: list[dict[str, Any]]) -> str:
    stem = path.name
    if stem.startswith("samples_"):
        return stem[len("samples_") :].rsplit("_", 1)[0]
    return "kormedmcqa"


def _cmd_import(args) -> int:
    path = Path(args.samples)
    if not path.exists():
        raise InputError("no such file", file=str(path))
    samples = read_jsonl(path)
    task = args.task or _task_of(path, samples)
    run = args.run or task
    gens, items = import_samples(
        samples, task=task, run=run, eval_set=args.eval_set or task, exam=args.exam, file=str(path)
    )
    write_jsonl(args.output, gens)
    if args.items:
        Path(args.items).write_text("".join(dumps(i) + "\n" for i in items), encoding="utf-8")
    agree = [g for g in gens if g["harness"]["exact_match"] is not None]
    print(
        f"imported {len(gens)} lm-eval samples of {task} as run {run!r} -> {args.output}"
        + (f" (items -> {args.items})" if args.items else "")
        + (f"; harness exact_match {sum(float(g['harness']['exact_match']) for g in agree):.0f}/{len(agree)}" if agree else "")
    )  # fmt: skip
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "import",
        help="import another tool's outputs as kmedqa generation lines (lm-eval samples)",
        description="Import another tool's per-item outputs as kmedqa generation lines.",
    )
    sub = p.add_subparsers(dest="tool", required=True, metavar="TOOL")
    q = sub.add_parser(
        "lm-eval",
        help="lm-evaluation-harness --log_samples output (samples_<task>_<date>.jsonl)",
        description="lm-evaluation-harness --log_samples records of a kormedmcqa task -> "
        "generation lines (format kormedmcqa_lmeval: scored with the harness's "
        "ExtractChoiceFilter and exact_match) and, with --items, the documents as items. "
        "Then: kmedqa score ITEMS GENS -o SCORES; kmedqa compare A B --metric mcq_strict.",
    )
    q.add_argument("samples", metavar="SAMPLES.jsonl")
    q.add_argument("-o", "--output", required=True, metavar="GENERATIONS.jsonl")
    q.add_argument("--items", metavar="ITEMS.jsonl", help="also write the samples' docs as items")
    q.add_argument("--run", help="run name in every line (default: the task name)")
    q.add_argument("--eval-set", help="eval set name (default: the task name)")
    q.add_argument("--task", help="task name (default: from the file name samples_<task>_…)")
    q.add_argument(
        "--exam", help="KorMedMCQA exam of the docs (default: from a task kormedmcqa_<exam>)"
    )
    q.set_defaults(func=_cmd_import)
