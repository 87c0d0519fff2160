"""Score generations against items: one row of metrics per item, and grouped summaries.

``kmedqa score ITEMS.jsonl GENERATIONS.jsonl -o SCORES.jsonl [--summary SUMMARY.json]
[--eval-set NAME]``

Items and generation lines are joined on ``id``; an item without a generation, a
generation for an unknown item, a duplicate id, or a line without ``output``/``run`` is an
:class:`~kmedqa.errors.InputError` naming the file, the id and the field. Nothing is
imputed: a metric that does not apply to an item is ``null``.

Per-item columns (:data:`ROW_COLUMNS`; every row has all of them):

- ``id run eval_set dataset task domain q_type`` and ``format`` (the prompt format whose
  ``answer_format`` was used: the generation line's ``format``, else
  ``item.meta.format``, else by dataset: ``aihub71875`` -> ``aihub``, ``kormedmcqa`` ->
  ``kormedmcqa``, anything else -> ``instruct``), ``n_new_tokens``, ``max_new_tokens`` (the
  token budget the output was generated under) and ``hit_budget`` (1: the output stopped
  at its budget, i.e. it may be truncated; 0: it ended by itself; null: the generation
  line does not say). :func:`summarize` reports its mean as ``truncation_rate``.
- ``rouge1_paper rouge2_paper rougeL_paper rouge1_ko rouge2_ko rougeL_ko``
  (:mod:`kmedqa.metrics.rouge`) of the raw output against ``item.answer``, for **every**
  item, MCQ included: the essential-medical study reports ROUGE over all its test items,
  MCQ among them, so the overall number is only comparable that way. Filter by ``task``
  for ROUGE on free-text items only.
- ``mcq_strict mcq_lenient format_ok`` (0/1; null unless ``task == "mcq"``) and the extracted
  0-based options ``strict_choice lenient_choice`` (null: no decision)
  (:mod:`kmedqa.metrics.mcq`).
- ``status``: the generation line's (hosted models: ``ok``, ``refused`` or ``malformed``;
  lines without one are ``ok``). A line that is not ``ok`` is not an answer: every metric
  of its row is null (only the token counts stay), and :func:`summarize` counts it in
  ``n_not_answered``.
- ``lang_hangul_ratio lang_han_ratio`` (:mod:`kmedqa.metrics.lang`) of the output.
- ``section_correct`` (0/1) and ``summary_rouge1_paper … summary_rougeL_ko``: ROUGE of the
  summary part only (after ``CODE#``), for ``section_summary`` items; null otherwise
  (:mod:`kmedqa.metrics.sections`).
- Only when BERTScore / BLEURT models are configured (:mod:`kmedqa.metrics.semantic`):
  ``summary_bertscore_p/r/f1``, ``summary_bleurt`` and, with both, ``summary_aggregate``
  (mean of summary ROUGE-1, BERTScore F1, BLEURT); null for other tasks. Without them
  these columns are absent, not zero.

:func:`summarize` averages every numeric column (:data:`METRIC_COLUMNS`) over groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from kmedqa.errors import ConfigError, InputError
from kmedqa.items import check_item_shas, item_sha, validate_item
from kmedqa.metrics.lang import lang_ratios
from kmedqa.metrics.mcq import ANSWER_FORMATS, extract_choice
from kmedqa.metrics.rouge import rouge_scores_many
from kmedqa.metrics.sections import parse_section_output, reference_section
from kmedqa.metrics.semantic import (
    AGGREGATE_COLUMN,
    ANSWER_BERTSCORE_COLUMNS,
    ANSWER_TASKS,
    BERTSCORE_COLUMNS,
    BLEURT_COLUMNS,
    SEMANTIC_COLUMNS,
    aggregate,
)
from kmedqa.prompts import get_format
from kmedqa.scoring.columns import (
    KEPT_WHEN_NOT_ANSWERED,
    LABEL_COLUMNS,
    METRIC_COLUMNS,
    ROW_COLUMNS,
    SUMMARY_ROUGE_COLUMNS,
)
from kmedqa.scoring.formats import resolve_format
from kmedqa.scoring.generations import GENERATION_STATUSES, check_generations, hit_budget
from kmedqa.scoring.summary import summarize

__all__ = [
    "GENERATION_STATUSES",
    "KEPT_WHEN_NOT_ANSWERED",
    "LABEL_COLUMNS",
    "METRIC_COLUMNS",
    "ROW_COLUMNS",
    "SUMMARY_ROUGE_COLUMNS",
    "add_semantic_scores",
    "generated_format",
    "score_items",
    "summarize",
]


def generated_format(item: dict[str, Any], gen: dict[str, Any]) -> str:
    """The prompt format an item was generated with (generation line, item meta, dataset,
    else inferred from the item: :mod:`kmedqa.scoring.formats`)."""
    return resolve_format(item, gen)[0]


def score_items(
    items: Sequence[dict[str, Any]],
    generations: Iterable[dict[str, Any]],
    *,
    eval_set: str | None = None,
    file_items: str | Path | None = None,
    file_gens: str | Path | None = None,
    semantic: Sequence[dict[str, Any]] | None = None,
    file_semantic: str | Path | None = None,
    eval_format: str | None = None,
    format_override: str | None = None,
) -> list[dict[str, Any]]:
    """One row of :data:`ROW_COLUMNS` per item, in item order (see the module docstring).

    ``eval_format``: the eval set's declared prompt format
    (``evaluation.eval_sets.<name>.format``): every item is scored with it, and a
    generation line made with another format is an error (a stale generation).
    ``format_override``: score every item with this prompt format (``kmedqa score --format``).

    ``semantic``: per-item BERTScore/BLEURT rows from
    :func:`kmedqa.metrics.semantic.semantic_scores` (one per ``section_summary`` item).
    """
    file_items = None if file_items is None else str(file_items)
    file_gens = None if file_gens is None else str(file_gens)
    for item in items:
        validate_item(item, file=file_items)
    gens = check_generations(generations, file_gens)
    item_ids = {item["id"] for item in items}
    if items and gens and not item_ids & set(gens):
        where = f" of {file_items}" if file_items else ""
        raise InputError(
            f"no generation is for an item{where} (first generation: {next(iter(gens))}): "
            "these generations belong to another items file",
            file=file_gens,
            item=items[0]["id"],
        )
    for item in items:
        if item["id"] not in gens:
            raise InputError("no generation for this item", file=file_gens, item=item["id"])
    for gid in gens:
        if gid not in item_ids:
            where = f" {file_items}" if file_items else ""
            raise InputError(
                f"generation for an item not in the items file{where}", file=file_gens, item=gid
            )
    check_item_shas(items, gens, file=file_gens, items_file=file_items)

    rows: list[dict[str, Any]] = []
    pairs: list[tuple[str, str]] = []  # (reference, prediction) for ROUGE, in one batch
    for item in items:
        iid = item["id"]
        gen = gens[iid]
        output = gen["output"]
        fmt, fmt_source = resolve_format(item, gen, format_override)
        if eval_format is not None and format_override is None:
            if gen.get("format") not in (None, eval_format):
                raise InputError(
                    f"generated with format {gen['format']!r}, but the eval set declares "
                    f"{eval_format!r}; delete the generation file and rerun",
                    file=file_gens,
                    item=iid,
                    field="format",
                )
            fmt, fmt_source = eval_format, "eval_set"
        try:
            answer_format = get_format(fmt).get("answer_format")
        except ConfigError as err:
            raise InputError(str(err), file=file_gens, item=iid, field="format") from None
        row: dict[str, Any] = dict.fromkeys(ROW_COLUMNS)
        row.update(
            id=iid,
            item_sha=item_sha(item),
            run=gen["run"],
            eval_set=eval_set if eval_set is not None else gen.get("eval_set"),
            dataset=item["dataset"],
            task=item["task"],
            domain=item["domain"],
            q_type=item["q_type"],
            format=fmt,
            format_source=fmt_source,
            n_new_tokens=gen.get("n_new_tokens"),
            max_new_tokens=gen.get("max_new_tokens"),
            hit_budget=hit_budget(gen),
            status=gen.get("status") or "ok",
        )
        pairs.append((item["answer"], output))
        if item["task"] == "mcq":
            if answer_format not in ANSWER_FORMATS:
                raise InputError(
                    f"an mcq item needs a prompt format whose answer_format is one of "
                    f"{', '.join(ANSWER_FORMATS)}; format {fmt!r} has {answer_format!r}",
                    file=file_gens,
                    item=iid,
                    field="format",
                )
            choice = extract_choice(output, item["options"], answer_format)
            row.update(
                mcq_strict=int(choice.strict_choice == item["answer_index"]),
                mcq_lenient=int(choice.lenient_choice == item["answer_index"]),
                format_ok=int(choice.format_ok),
                strict_choice=choice.strict_choice,
                lenient_choice=choice.lenient_choice,
            )
        row.update(lang_ratios(output))
        if item["task"] == "section_summary":
            ref_code, ref_summary = reference_section(item["answer"], item["meta"])
            if ref_code is None:
                field = "meta" if "section_header" in item["meta"] else "answer"
                raise InputError(
                    "reference has no recognized MTS-Dialog section code (expected 'CODE#summary' "
                    "or meta.section_header)",
                    file=file_items,
                    item=iid,
                    field=field,
                )
            pred_code, pred_summary = parse_section_output(output)
            row["section_correct"] = int(pred_code == ref_code)
            pairs.append((ref_summary, pred_summary))
        rows.append(row)

    scores = iter(rouge_scores_many([r for r, _ in pairs], [p for _, p in pairs]))
    for row in rows:
        row.update(next(scores))
        if row["task"] == "section_summary":
            row.update({f"summary_{k}": v for k, v in next(scores).items()})
    if semantic is not None:
        add_semantic_scores(rows, semantic, None if file_semantic is None else str(file_semantic))
    for row in rows:  # a refusal or an unreadable reply is not an answer: nothing is scored
        if row["status"] != "ok":
            for c in row:
                if c not in LABEL_COLUMNS and c not in KEPT_WHEN_NOT_ANSWERED:
                    row[c] = None
    return rows


def add_semantic_scores(
    rows: list[dict[str, Any]], semantic: Sequence[dict[str, Any]], file: str | None = None
) -> None:
    """Add the BERTScore/BLEURT columns (and the aggregate when both are there) to ``rows``."""
    by_id: dict[str, dict[str, Any]] = {}
    for lineno, srow in enumerate(semantic, 1):
        sid = srow.get("id")
        if not isinstance(sid, str) or sid in by_id:
            raise InputError(f"line {lineno}: missing or duplicate id", file=file, field="id")
        by_id[sid] = srow
    columns = [
        c
        for c in (*SEMANTIC_COLUMNS, *ANSWER_BERTSCORE_COLUMNS)
        if c != AGGREGATE_COLUMN and any(c in r for r in by_id.values())
    ]
    tasks = {r["id"]: r["task"] for r in rows}
    summary_columns = any(c in columns for c in (*BERTSCORE_COLUMNS, *BLEURT_COLUMNS))
    # every section_summary item needs its summary scores; free-text answers may have theirs
    wanted = {i for i, t in tasks.items() if t == "section_summary"} if summary_columns else set()
    for sid, srow in by_id.items():
        answer_only = not any(c in srow for c in (*BERTSCORE_COLUMNS, *BLEURT_COLUMNS))
        if sid not in wanted and not (answer_only and tasks.get(sid) in ANSWER_TASKS):
            raise InputError(
                "semantic scores for an id that is not a section_summary (or a scored "
                "short/descriptive) item",
                file=file,
                item=sid,
            )
    for row in rows:
        srow = by_id.get(row["id"])
        if row["id"] in wanted and srow is None:
            raise InputError("no BERTScore/BLEURT scores for this item", file=file, item=row["id"])
        for c in columns:
            value = None if srow is None else srow.get(c)
            if srow is not None and c in srow and not isinstance(value, int | float):
                raise InputError("must be a number", file=file, item=row["id"], field=c)
            row[c] = value
        if "summary_bertscore_f1" in columns and "summary_bleurt" in columns:
            row[AGGREGATE_COLUMN] = aggregate(row)
