"""Data subcommands: ``prepare``, ``split`` and ``demo-data``.

    kmedqa prepare aihub ROOT -o OUT.jsonl
    kmedqa prepare kormedmcqa PATH|sean0042/KorMedMCQA --exam doctor [--split test] -o OUT.jsonl
    kmedqa split ITEMS.jsonl -o OUTDIR [--seed 42] [--ratios 0.8 0.1 0.1]
                 [--strata domain q_type] [--predefined META_KEY | --all-test]
    kmedqa demo-data OUTDIR [--seed 42]

Outputs are written only after every item has been read and validated; a bad
input ends with one line ``kmedqa: error: <file>: item <id>: field '<f>': …``.
"""

from __future__ import annotations

import argparse
from collections import Counter

from kmedqa.cli import done
from kmedqa.io import check_output_file, write_jsonl
from kmedqa.items import read_items

ENCODING_HELP = "text encoding of the input when not UTF-8 (e.g. cp949, cp1252)"


def _summary(items: list[dict]) -> str:
    by_task = Counter(it["task"] for it in items)
    return ", ".join(f"{k} {v}" for k, v in sorted(by_task.items()))


def _wrote(items: list[dict], output: str, what: str) -> int:
    write_jsonl(output, items)
    return done(f"wrote {len(items)} {what} to {output}")


def _prepare_aihub(args: argparse.Namespace) -> int:
    from kmedqa.data.aihub import load_aihub

    check_output_file(args.output)
    items = load_aihub(args.root, encoding=args.encoding)
    return _wrote(items, args.output, f"items ({_summary(items)})")


def _prepare_kormedmcqa(args: argparse.Namespace) -> int:
    from kmedqa.data.kormedmcqa import load_kormedmcqa

    check_output_file(args.output)
    items = load_kormedmcqa(args.source, exam=args.exam, split=args.split, encoding=args.encoding)
    return _wrote(items, args.output, f"{args.exam} items")


def _prepare_mtsdialog(args: argparse.Namespace) -> int:
    from kmedqa.data.mtsdialog import load_mtsdialog

    check_output_file(args.output)
    items = load_mtsdialog(args.path, split=args.split, encoding=args.encoding)
    return _wrote(items, args.output, "MTS-Dialog items")


def _prepare_instruct(args: argparse.Namespace) -> int:
    from kmedqa.data.instruct import load_instruct

    check_output_file(args.output)
    items = load_instruct(args.path, args.name, encoding=args.encoding)
    return _wrote(items, args.output, f"items ({_summary(items)})")


def _split(args: argparse.Namespace) -> int:
    from kmedqa.data.split import write_split

    items = read_items(args.items)
    manifest = write_split(
        items,
        args.outdir,
        ratios=args.ratios,
        seed=args.seed,
        strata=args.strata,
        predefined=args.predefined,
        all_test=args.all_test,
        input_file=args.items,
    )
    totals = manifest["totals"]
    return done(
        f"{manifest['mode']} split of {len(items)} items: train {totals['train']}, "
        f"val {totals['val']}, test {totals['test']} -> {args.outdir}"
    )


def _demo_data(args: argparse.Namespace) -> int:
    from kmedqa.data.demo import write_demo_data

    summary = write_demo_data(args.outdir, seed=args.seed)
    aihub = summary["aihub71875"]
    return done(
        f"wrote illustrative demo data to {args.outdir}: aihub71875 {aihub['n_items']} items "
        f"({aihub['by_split']}), kormedmcqa/doctor.csv {summary['kormedmcqa']['n_items']} items"
    )


def _writes_items(p: argparse.ArgumentParser, func) -> None:
    """The options every ``prepare`` source ends with: the items file, the input's encoding."""
    p.add_argument("-o", "--output", required=True, help="items file to write (.jsonl)")
    p.add_argument("--encoding", help=ENCODING_HELP)
    p.set_defaults(func=func)


def register(sub: argparse._SubParsersAction) -> None:
    from kmedqa.data.kormedmcqa import EXAMS, HUB_ID, SPLITS

    prepare = sub.add_parser("prepare", help="normalize a raw dataset into items (JSON lines)")
    sources = prepare.add_subparsers(dest="source_kind", required=True, metavar="DATASET")

    p = sources.add_parser(
        "aihub", help="AI Hub 71875 필수의료 의학지식 (TL_/VL_ zips or extracted JSON)"
    )
    p.add_argument("root", help="download root, a folder inside it, a label zip or a JSON file")
    _writes_items(p, _prepare_aihub)

    p = sources.add_parser(
        "kormedmcqa", help="KorMedMCQA (local parquet/csv/jsonl/json or the hub)"
    )
    p.add_argument("source", help=f"a file, a directory, or the hub id {HUB_ID}")
    p.add_argument("--exam", default="doctor", choices=EXAMS)
    p.add_argument(
        "--split", default=None, choices=SPLITS, help="keep only this split (default: all)"
    )
    _writes_items(p, _prepare_kormedmcqa)

    p = sources.add_parser("mtsdialog", help="MTS-Dialog CSV file(s) (section header + summary)")
    p.add_argument("path", help="the folder with the three MTS-Dialog CSVs, or one CSV")
    p.add_argument(
        "--split",
        default=None,
        choices=["train", "val", "test"],
        help="split of a single CSV whose name does not say it (test set 2, augmented sets)",
    )
    _writes_items(p, _prepare_mtsdialog)

    p = sources.add_parser(
        "instruct", help="instruction data: JSON/JSONL of question/instruction/answer"
    )
    p.add_argument("path")
    p.add_argument("--name", required=True, help="dataset name written into each item")
    _writes_items(p, _prepare_instruct)

    p = sub.add_parser("split", help="deterministic train/val/test split with a manifest")
    p.add_argument("items", help="normalized items (.jsonl)")
    p.add_argument(
        "-o", "--outdir", required=True, help="folder for train/val/test.jsonl and manifest.json"
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--ratios", type=float, nargs=3, default=[0.8, 0.1, 0.1], metavar=("TRAIN", "VAL", "TEST")
    )
    p.add_argument(
        "--strata",
        nargs="+",
        default=["domain", "q_type"],
        metavar="FIELD",
        help="item fields (or meta.<key>) to stratify by",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--predefined", metavar="META_KEY", help="take the split from item.meta[META_KEY]"
    )
    mode.add_argument(
        "--all-test", action="store_true", help="everything goes to test (eval-only sets)"
    )
    p.set_defaults(func=_split)

    p = sub.add_parser("demo-data", help="write the illustrative offline demo datasets")
    p.add_argument("outdir", help="writes OUTDIR/aihub71875/… and OUTDIR/kormedmcqa/doctor.csv")
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=_demo_data)
