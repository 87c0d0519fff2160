"""The ``kmedqa`` command. Each topic module registers its own subcommands.

A module listed in :data:`MODULES` defines ``register(subparsers)``, which adds
its subcommands and sets ``func`` (called with the parsed args) on each.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from kmedqa import __version__
from kmedqa.errors import one_line_errors

MODULES = (
    "kmedqa.data.cli",
    "kmedqa.data.sources_cli",
    "kmedqa.scoring",
    "kmedqa.stats.cli",
    "kmedqa.judge.cli",
    "kmedqa.generation.bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kmedqa",
        description="Reproducible fine-tuning and evaluation of LMs on (Korean) medical QA.",
    )
    parser.add_argument("--version", action="version", version=f"kmedqa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # module not written yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with one_line_errors():
        rc = args.func(args)
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
