"""``kmedqa judge`` and ``kmedqa judge-table``.

    kmedqa judge ITEMS.jsonl --generations RUN=GEN.jsonl [RUN=GEN.jsonl ...]
                 (--config judge.yaml | --backend anthropic|local) [--model M]
                 [--allow-external] [--sample all|N] [--cache-dir DIR]
                 -o OUT.jsonl --summary SUMMARY.json

    kmedqa judge-table JUDGE.jsonl --base RUN --finetuned RUN [--summary SUMMARY.json]
                 [--md OUT.md] [--tex OUT.tex] [--resamples N] [--seed S]

The API key is read only from ANTHROPIC_API_KEY; there is no option for it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

from kmedqa.cli import done
from kmedqa.errors import ConfigError, InputError
from kmedqa.io import atomic_write_text, check_output_file, read_json, read_jsonl
from kmedqa.items import check_item_shas, read_items

DEFAULT_CACHE = "results/cache/judge"


def _parse_generations(specs: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for spec in specs:
        run, sep, path = spec.partition("=")
        if not sep or not run or not path:
            raise InputError(f"--generations expects RUN=FILE, got {spec!r}", field="generations")
        if run in out:
            raise InputError(f"run {run!r} given twice", field="generations")
        lines = read_jsonl(path)
        for i, g in enumerate(lines, 1):
            if not isinstance(g.get("id"), str) or not g["id"]:
                raise InputError(f"line {i}: missing id", file=path, field="id")
            if not isinstance(g.get("output"), str):
                raise InputError("must be text", file=path, item=g["id"], field="output")
        out[run] = lines
    return out


def _load_config(args: argparse.Namespace) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    if args.config:
        p = Path(args.config)
        if not p.exists():
            raise InputError("file not found", file=p)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{p}: not valid YAML ({err})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: must be a mapping")
        cfg = dict(data["judge"]) if isinstance(data.get("judge"), dict) else dict(data)
    if args.backend:
        cfg["backend"] = args.backend
    if args.model:
        cfg["model"] = args.model
    if args.allow_external:
        cfg["allow_external"] = True
    if args.rubric:
        cfg["rubric"] = args.rubric
    if args.sample:
        if args.sample == "all":
            cfg["sample"] = "all"
        else:
            try:
                n = int(args.sample)
            except ValueError:
                raise ConfigError("--sample must be 'all' or a number") from None
            sample = cfg.get("sample") if isinstance(cfg.get("sample"), dict) else {}
            cfg["sample"] = {**{"tasks": ["short", "descriptive"], "seed": 42}, **sample, "n": n}
    return cfg


def cmd_judge(args: argparse.Namespace) -> int:
    from kmedqa.judge.run import judge_run

    if not args.config and not args.backend:
        raise ConfigError("give --config judge.yaml or --backend anthropic|local|none")
    cfg = _load_config(args)
    check_output_file(args.output)
    items = read_items(args.items)
    gens = _parse_generations(args.generations)
    for spec, lines in zip(args.generations, gens.values(), strict=True):
        check_item_shas(
            items, {g["id"]: g for g in lines}, file=spec.partition("=")[2], items_file=args.items
        )
    logger = logging.getLogger("kmedqa")
    handler = None
    if args.log:
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(args.log, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        old_level = logger.level
        logger.setLevel(logging.INFO)
    try:
        summary = judge_run(items, gens, cfg, args.cache_dir, args.output, args.summary)
    finally:
        if handler is not None:
            logger.removeHandler(handler)
            handler.close()
            logger.setLevel(old_level)
    if summary["status"] == "not_run":
        return done(f"judge not run: {summary['reason']}")
    return done(
        f"judge: {summary['n_ok']} ok, {summary['n_invalid']} invalid of {summary['n_requested']} "
        f"({summary['calls_made']} calls, {summary['cache_hits']} cached)"
    )


def cmd_table(args: argparse.Namespace) -> int:
    from kmedqa.judge.table import table5

    rows = read_jsonl(args.rows)
    summary = read_json(args.summary) if args.summary else None
    out = table5(
        rows, args.base, args.finetuned, summary=summary, n_resamples=args.resamples, seed=args.seed
    )
    if args.md:
        atomic_write_text(args.md, out["markdown"])
    if args.tex:
        atomic_write_text(args.tex, out["latex"])
    if not args.md and not args.tex:
        sys.stdout.write(out["markdown"])
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "judge",
        help="score answers with an LLM judge (rubric: accuracy, completeness, relevance)",
        description="Judge sampled items' answers from one or more runs against the reference answer.",
    )
    p.add_argument("items", help="normalized items JSONL (question + reference answer)")
    p.add_argument(
        "--generations",
        nargs="+",
        required=True,
        metavar="RUN=GEN.jsonl",
        help="generations of each run to judge",
    )
    p.add_argument(
        "--config", help="YAML with the judge section (or a whole config with a 'judge:' key)"
    )
    p.add_argument(
        "--backend", choices=("anthropic", "local", "none"), help="override judge.backend"
    )
    p.add_argument("--model", help="override judge.model (Claude model id, or a local model path)")
    p.add_argument("--rubric", help="override judge.rubric (packaged name or YAML path)")
    p.add_argument(
        "--allow-external",
        action="store_true",
        help="allow sending items to the external API (judge.allow_external)",
    )
    p.add_argument(
        "--sample", help="'all' or a number of items (short + descriptive, seed 42, stratified)"
    )
    p.add_argument(
        "--cache-dir", default=DEFAULT_CACHE, help=f"judge reply cache (default {DEFAULT_CACHE})"
    )
    p.add_argument("--log", help="also write the judge's log to this file")
    p.add_argument("-o", "--output", required=True, help="per-item per-run judge rows (JSONL)")
    p.add_argument("--summary", required=True, help="run summary (JSON)")
    p.set_defaults(func=cmd_judge)

    t = subparsers.add_parser(
        "judge-table", help="Table 5: judge scores, base vs fine-tuned, paired bootstrap CI"
    )
    t.add_argument("rows", help="judge rows JSONL from `kmedqa judge`")
    t.add_argument("--base", required=True, help="run name of the base model")
    t.add_argument("--finetuned", required=True, help="run name of the fine-tuned model")
    t.add_argument("--summary", help="judge summary JSON (to report a judge that did not run)")
    t.add_argument("--md", help="write the Markdown table here")
    t.add_argument("--tex", help="write the LaTeX table here")
    t.add_argument("--resamples", type=int, default=10_000)
    t.add_argument("--seed", type=int, default=42)
    t.set_defaults(func=cmd_table)
