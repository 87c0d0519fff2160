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
from kmedqa.io import check_output_file, read_jsonl, write_json, write_jsonl
from kmedqa.items import check_item_shas, item_sha, read_items, validate_item
from kmedqa.metrics.lang import lang_ratios
from kmedqa.metrics.mcq import ANSWER_FORMATS, extract_choice
from kmedqa.metrics.rouge import ROUGE_COLUMNS, rouge_scores_many
from kmedqa.metrics.sections import parse_section_output, reference_section
from kmedqa.metrics.semantic import (
    AGGREGATE_COLUMN,
    ANSWER_BERTSCORE_COLUMNS,
    ANSWER_TASKS,
    BERTSCORE_COLUMNS,
    BLEURT_COLUMNS,
    SEMANTIC_COLUMNS,
    aggregate,
    is_configured,
    semantic_scores,
)
from kmedqa.prompts import get_format
from kmedqa.scoring.formats import resolve_format

SUMMARY_ROUGE_COLUMNS = tuple(f"summary_{c}" for c in ROUGE_COLUMNS)
LABEL_COLUMNS = (
    "id",
    "item_sha",
    "run",
    "eval_set",
    "dataset",
    "task",
    "domain",
    "q_type",
    "format",
    "format_source",
    "status",
)
# Kept on a row whose generation is not an answer (status refused / malformed).
KEPT_WHEN_NOT_ANSWERED = ("n_new_tokens", "hit_budget", "max_new_tokens")
METRIC_COLUMNS = (
    "n_new_tokens",
    "hit_budget",
    *ROUGE_COLUMNS,
    "mcq_strict",
    "mcq_lenient",
    "format_ok",
    "lang_hangul_ratio",
    "lang_han_ratio",
    "section_correct",
    *SUMMARY_ROUGE_COLUMNS,
)
ROW_COLUMNS = (
    *LABEL_COLUMNS,
    *METRIC_COLUMNS,
    "strict_choice",
    "lenient_choice",
    "max_new_tokens",
)


GENERATION_STATUSES = ("ok", "refused", "malformed")


def generated_format(item: dict[str, Any], gen: dict[str, Any]) -> str:
    """The prompt format an item was generated with (generation line, item meta, dataset,
    else inferred from the item: :mod:`kmedqa.scoring.formats`)."""
    return resolve_format(item, gen)[0]


def _check_generations(
    generations: Iterable[dict[str, Any]], file: str | None
) -> dict[str, dict[str, Any]]:
    by_id: dict[str, dict[str, Any]] = {}
    for lineno, gen in enumerate(generations, 1):
        gid = gen.get("id")
        if not isinstance(gid, str) or not gid:
            raise InputError(f"line {lineno}: missing or empty id", file=file, field="id")
        if gid in by_id:
            raise InputError("duplicate id in generations", file=file, item=gid, field="id")
        if "output" not in gen:
            raise InputError("missing field", file=file, item=gid, field="output")
        if not isinstance(gen["output"], str):
            raise InputError("must be text", file=file, item=gid, field="output")
        if not isinstance(gen.get("run"), str) or not gen["run"]:
            raise InputError("missing or empty", file=file, item=gid, field="run")
        for field in ("n_new_tokens", "max_new_tokens"):
            v = gen.get(field)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise InputError("must be a non-negative integer", file=file, item=gid, field=field)
        if gen.get("hit_budget") is not None and not isinstance(gen["hit_budget"], bool):
            raise InputError("must be true or false", file=file, item=gid, field="hit_budget")
        if gen.get("status", "ok") not in GENERATION_STATUSES:
            raise InputError(
                f"must be one of {', '.join(GENERATION_STATUSES)}",
                file=file,
                item=gid,
                field="status",
            )
        by_id[gid] = gen
    return by_id


def _hit_budget(gen: dict[str, Any]) -> int | None:
    """1/0 from the generation line's ``hit_budget``, else from its token count and budget."""
    if gen.get("hit_budget") is not None:
        return int(gen["hit_budget"])
    n, budget = gen.get("n_new_tokens"), gen.get("max_new_tokens")
    return None if n is None or budget is None else int(n >= budget)


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
    gens = _check_generations(generations, file_gens)
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
            hit_budget=_hit_budget(gen),
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


def _sort_key(values: tuple) -> tuple:
    return tuple((v is None, str(v)) for v in values)


def summarize(
    rows: Sequence[dict[str, Any]],
    by: Sequence[str] = ("q_type", "domain"),
    metrics: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Mean and count of every metric per group, within each (run, eval_set).

    Groups: ``overall``, each column of ``by`` alone, and all of ``by`` crossed (named
    ``"q_type+domain"``). Each output dict has ``run``, ``eval_set``, ``group``, one label
    column per ``by`` column (None where the group does not split by it, or where the
    value itself is null), ``n`` (rows in the group) and, per metric, the mean over the
    rows where it is not null (``None`` if there is none) and ``n_<metric>``, and
    ``truncation_rate`` / ``n_truncated``: the share and number of outputs that hit their
    token budget (``None`` where the generation lines do not say). ``metrics``
    defaults to :data:`METRIC_COLUMNS` plus the BERTScore/BLEURT columns the rows have.
    """
    if metrics is None:
        metrics = (*METRIC_COLUMNS, *(c for c in SEMANTIC_COLUMNS if any(c in r for r in rows)))
    by = tuple(by)
    groupings: list[tuple[str, ...]] = [()] + [(c,) for c in by]
    if len(by) > 1:
        groupings.append(by)
    out: list[dict[str, Any]] = []
    partitions: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        partitions.setdefault((row.get("run"), row.get("eval_set")), []).append(row)
    for (run, eval_set), prows in sorted(partitions.items(), key=lambda kv: _sort_key(kv[0])):
        for cols in groupings:
            groups: dict[tuple, list[dict[str, Any]]] = {}
            for row in prows:
                groups.setdefault(tuple(row.get(c) for c in cols), []).append(row)
            for key in sorted(groups, key=_sort_key):
                members = groups[key]
                entry: dict[str, Any] = {
                    "run": run,
                    "eval_set": eval_set,
                    "group": "+".join(cols) if cols else "overall",
                }
                entry.update(dict.fromkeys(by))
                entry.update(zip(cols, key, strict=True))
                entry["n"] = len(members)
                entry["n_not_answered"] = sum(r.get("status", "ok") != "ok" for r in members)
                entry["formats"] = _format_counts(members)
                for m in metrics:
                    vals = [r[m] for r in members if r.get(m) is not None]
                    entry[m] = sum(vals) / len(vals) if vals else None
                    entry[f"n_{m}"] = len(vals)
                hits = [r["hit_budget"] for r in members if r.get("hit_budget") is not None]
                entry["truncation_rate"] = sum(hits) / len(hits) if hits else None
                entry["n_truncated"] = sum(hits) if hits else None
                out.append(entry)
    return out


def _format_counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """``{"mcq_number (inferred)": 37, …}``: how each row's prompt format was decided."""
    counts: dict[str, int] = {}
    for r in rows:
        if r.get("format") is not None:
            key = f"{r['format']} ({r.get('format_source') or 'item'})"
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _cmd_score(args) -> int:
    check_output_file(args.output)
    if args.summary:
        check_output_file(args.summary, "--summary")
    items = read_items(args.items, encoding=args.encoding)
    gens = read_jsonl(args.generations, encoding=args.encoding)
    rows = score_items(
        items,
        gens,
        eval_set=args.eval_set,
        file_items=args.items,
        file_gens=args.generations,
        format_override=args.format,
    )
    for key, n in _format_counts([r for r in rows if r["format_source"] != "item"]).items():
        print(f"format: {key} for {n} items")
    cfg = {
        "device": args.device,
        "bertscore": {"model": args.bertscore_model, "num_layers": args.bertscore_layers},
        "bleurt": {"model": args.bleurt_model},
    }
    if is_configured(cfg):
        semantic, meta = semantic_scores(items, {g["id"]: g["output"] for g in gens}, cfg)
        add_semantic_scores(rows, semantic)
        for name in ("bertscore", "bleurt"):
            if meta[name]:
                print(f"{name}: {meta[name].get('hash') or meta[name]['model']}")
    write_jsonl(args.output, rows)
    if args.summary:
        by = tuple(c for c in args.by.split(",") if c)
        write_json(args.summary, summarize(rows, by=by))
    print(f"scored {len(rows)} items -> {args.output}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "score",
        help="per-item metrics (ROUGE, MCQ, language, sections) and grouped summaries",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("items", help="normalized items (JSON lines)")
    p.add_argument("generations", help="generation lines (JSON lines): id, run, output, …")
    p.add_argument("-o", "--output", required=True, help="per-item scores (JSON lines)")
    p.add_argument("--summary", help="write grouped means here (JSON)")
    p.add_argument("--encoding", help="text encoding of both inputs when not UTF-8")
    p.add_argument("--eval-set", help="eval set name written into every row")
    p.add_argument(
        "--format",
        help="score every item with this prompt format (prompts/tasks.yaml); default: the "
        "generation's, the item's meta.format, else inferred (numbered/lettered options)",
    )
    p.add_argument(
        "--bertscore-model",
        help="BERTScore of section summaries with this model (hub id or directory)",
    )
    p.add_argument(
        "--bertscore-layers",
        type=int,
        help="which layer (default: bert-score's recommendation for known hub ids)",
    )
    p.add_argument(
        "--bleurt-model", help="BLEURT of section summaries with this checkpoint (hub id or dir)"
    )
    p.add_argument("--device", default="auto", help="for BERTScore/BLEURT: auto, cpu or cuda")
    p.add_argument(
        "--by",
        default="q_type,domain",
        help="comma-separated columns to group the summary by (default: q_type,domain)",
    )
    p.set_defaults(func=_cmd_score)
