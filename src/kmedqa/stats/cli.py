"""The ``kmedqa compare`` command: paired comparisons of per-item score files.

    kmedqa compare A.jsonl B.jsonl [C.jsonl …] --metric mcq_strict [--resamples 10000] [--seed 0]

With more than one compared file, each is compared to A and the family (one metric, one
set of items) gets Holm-adjusted p-values (:func:`kmedqa.stats.paired_files.compare_family`).

It runs :func:`kmedqa.stats.paired_files.compare_paired` (bootstrap CI, permutation test,
exact McNemar for 0/1 metrics) and prints the JSON; the workflow's rule ``compare``
runs the whole comparison plan (:mod:`kmedqa.stats.compare`) instead.
"""

from __future__ import annotations

import argparse
import json

from kmedqa.stats.paired_files import compare_family, compare_paired


def _cmd_compare(args: argparse.Namespace) -> int:
    from kmedqa.io import check_output_file, read_jsonl, write_json

    if args.output:
        check_output_file(args.output)
    results = [
        compare_paired(
            read_jsonl(args.a),
            read_jsonl(b),
            args.metric,
            n_resamples=args.resamples,
            seed=args.seed,
            file_a=args.a,
            file_b=b,
            ci_method=args.ci_method,
        )
        for b in args.b
    ]
    result = results[0] if len(results) == 1 else {"comparisons": compare_family(results)}
    print(json.dumps(result, ensure_ascii=False, indent=2, sort_keys=True))
    if args.output:
        write_json(args.output, result)
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compare",
        help="paired significance test of run B vs run A on one metric",
        description=(
            "Join two per-item score files on id and compare metric B - A: paired "
            "bootstrap CI, sign-flip permutation test, and exact McNemar for 0/1 metrics."
        ),
    )
    p.add_argument("a", metavar="A.jsonl", help="per-item scores of the reference run")
    p.add_argument(
        "b",
        metavar="B.jsonl",
        nargs="+",
        help="per-item scores of the compared run(s); several: each vs A, Holm-adjusted",
    )
    p.add_argument("--metric", required=True, help="metric column, e.g. mcq_strict")
    p.add_argument("--resamples", type=_positive_int, default=10000, help="default 10000")
    p.add_argument("--seed", type=int, default=0, help="default 0")
    p.add_argument("--ci-method", choices=("percentile", "bca"), default="percentile")
    p.add_argument("-o", "--output", metavar="OUT.json", help="also write the JSON here")
    p.set_defaults(func=_cmd_compare)
