"""``kmedqa merge`` and ``kmedqa decontam``.

    kmedqa merge NAME=items.jsonl [NAME=items.jsonl ...] -o merged.jsonl --report report.json
    kmedqa decontam --train NAME=train.jsonl [...] --eval NAME=test.jsonl [...] -o report.json
                    [--table-md T.md] [--table-tex T.tex] [--ngram 13] [--near-dup-threshold 0.8]

Inputs are normalized items files (validated on reading). ``NAME`` labels a source
in the merge report, or a row of the decontamination table. The loaders
:func:`load_mtsdialog` and :func:`load_instruct` are re-exported here for
``kmedqa prepare``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kmedqa.data.decontam import NEAR_DUP_THRESHOLD, NGRAM, decontaminate, make_table
from kmedqa.data.instruct import load_instruct
from kmedqa.data.merge import merge_sources
from kmedqa.data.mtsdialog import load_mtsdialog
from kmedqa.errors import InputError
from kmedqa.io import atomic_write_text, check_output_file, sha256_file, write_json, write_jsonl
from kmedqa.items import read_items

__all__ = ["load_instruct", "load_mtsdialog", "parse_named", "register"]


def parse_named(specs: list[str], option: str) -> list[tuple[str, Path]]:
    """``["a=x.jsonl", ...]`` -> ``[("a", Path("x.jsonl")), ...]``; names must be unique."""
    out: list[tuple[str, Path]] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise InputError(f"{option} {spec!r}: expected NAME=PATH")
        if any(name == n for n, _ in out):
            raise InputError(f"{option}: name {name!r} given twice")
        out.append((name, Path(path)))
    return out


def cmd_merge(args: argparse.Namespace) -> int:
    check_output_file(args.output)
    named = parse_named(args.sources, "merge")
    sources = [(name, read_items(path)) for name, path in named]
    items, report = merge_sources(sources)
    report["files"] = {name: {"path": str(p), "sha256": sha256_file(p)} for name, p in named}
    write_jsonl(args.output, items)
    write_json(args.report, report)
    print(
        f"merged {report['n_input']} items from {len(named)} sources: kept {report['n_kept']}, "
        f"dropped {report['n_dropped']} duplicates -> {args.output}"
    )
    return 0


def cmd_decontam(args: argparse.Namespace) -> int:
    check_output_file(args.output)
    trains = parse_named(args.train, "--train")
    evals = parse_named(args.eval, "--eval")
    eval_items = {name: read_items(p) for name, p in evals}
    pairs = []
    reports = {}
    for tname, tpath in trains:
        train_items = read_items(tpath)
        for ename, epath in evals:
            rep = decontaminate(
                train_items,
                eval_items[ename],
                ngram=args.ngram,
                near_dup_threshold=args.near_dup_threshold,
            )
            reports[(tname, ename)] = rep
            pairs.append(
                {
                    "train": tname,
                    "eval": ename,
                    "train_file": str(tpath),
                    "eval_file": str(epath),
                    "train_sha256": sha256_file(tpath),
                    "eval_sha256": sha256_file(epath),
                    **rep,
                }
            )
            print(
                f"{tname} x {ename}: {rep['n_flagged_any']}/{rep['n_eval']} eval items flagged "
                f"({rep['n_flagged_ngram']} {args.ngram}-gram, {rep['n_flagged_near_dup']} near-duplicate)"
            )
    write_json(
        args.output,
        {"ngram": args.ngram, "near_dup_threshold": args.near_dup_threshold, "pairs": pairs},
    )
    md, tex = make_table(reports)
    if args.table_md:
        atomic_write_text(args.table_md, md)
    if args.table_tex:
        atomic_write_text(args.table_tex, tex)
    return 0


def _threshold(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError("must be in (0, 1]")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "merge",
        help="merge item files, removing exact (normalized) duplicates; first source wins",
        description="Merge normalized item files in the given order; an item whose normalized "
        "question, options and answer equal an earlier one is dropped.",
    )
    p.add_argument("sources", nargs="+", metavar="NAME=ITEMS.jsonl")
    p.add_argument("-o", "--output", required=True, help="merged items (JSON lines)")
    p.add_argument(
        "--report", required=True, help="per-source counts and dropped duplicates (JSON)"
    )
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser(
        "decontam",
        help="flag eval items that overlap training items (13-gram, near duplicate)",
        description="For every training set x eval set, flag eval items that share an n-gram "
        "of --ngram tokens with a training item or whose question is a near duplicate "
        "(character 5-gram Jaccard >= --near-dup-threshold) of a training question.",
    )
    p.add_argument("--train", action="extend", nargs="+", required=True, metavar="NAME=TRAIN.jsonl")
    p.add_argument("--eval", action="extend", nargs="+", required=True, metavar="NAME=EVAL.jsonl")
    p.add_argument("-o", "--output", required=True, help="report (JSON)")
    p.add_argument("--table-md", help="Markdown table")
    p.add_argument("--table-tex", help="LaTeX table (booktabs)")
    p.add_argument("--ngram", type=_positive, default=NGRAM)
    p.add_argument("--near-dup-threshold", type=_threshold, default=NEAR_DUP_THRESHOLD)
    p.set_defaults(func=cmd_decontam)
