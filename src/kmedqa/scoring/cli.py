"""The ``kmedqa score`` command: score one generations file against its items."""

from __future__ import annotations

from kmedqa import scoring
from kmedqa.cli import add_command
from kmedqa.io import check_output_file, read_jsonl, write_json, write_jsonl
from kmedqa.items import read_items
from kmedqa.metrics.semantic import is_configured, semantic_scores
from kmedqa.scoring.summary import format_counts, summarize


def _cmd_score(args) -> int:
    check_output_file(args.output)
    if args.summary:
        check_output_file(args.summary, "--summary")
    items = read_items(args.items, encoding=args.encoding)
    gens = read_jsonl(args.generations, encoding=args.encoding)
    rows = scoring.score_items(
        items,
        gens,
        eval_set=args.eval_set,
        file_items=args.items,
        file_gens=args.generations,
        format_override=args.format,
    )
    for key, n in format_counts([r for r in rows if r["format_source"] != "item"]).items():
        print(f"format: {key} for {n} items")
    cfg = {
        "device": args.device,
        "bertscore": {"model": args.bertscore_model, "num_layers": args.bertscore_layers},
        "bleurt": {"model": args.bleurt_model},
    }
    if is_configured(cfg):
        semantic, meta = semantic_scores(items, {g["id"]: g["output"] for g in gens}, cfg)
        scoring.add_semantic_scores(rows, semantic)
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
    p = add_command(
        subparsers,
        "score",
        scoring.__doc__,
        help="per-item metrics (ROUGE, MCQ, language, sections) and grouped summaries",
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
