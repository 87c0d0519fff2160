"""The ``kmedqa`` command. Each topic module registers its own subcommands.

A module listed in :data:`MODULES` defines ``register(subparsers)``, which adds
its subcommands and sets ``func`` (called with the parsed args) on each. A listed
module that does not import, or has no ``register``, stops the command with one line
naming it and the cause (never a silently missing subcommand).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from kmedqa import __version__
from kmedqa.errors import KmedqaError, one_line_errors

MODULES = (
    "kmedqa.data.cli",
    "kmedqa.data.sources_cli",
    "kmedqa.scoring.cli",
    "kmedqa.stats.cli",
    "kmedqa.judge.cli",
    "kmedqa.generation.bench",
    "kmedqa.interop.lmeval",
)


def add_command(subparsers, name: str, doc: str, *, help: str) -> argparse.ArgumentParser:
    """Add subcommand ``name``; its ``--help`` description is the first paragraph of ``doc``
    (the docstring of the module that defines it)."""
    return subparsers.add_parser(name, help=help, description=doc.split("\n\n")[0])


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
        except ImportError as err:
            raise KmedqaError(
                f"command module {name} does not import ({type(err).__name__}: {err}); "
                "reinstall kmedqa (pip install -e '.[demo,test]') or fix the module"
            ) from err
        if not callable(getattr(module, "register", None)):
            raise KmedqaError(f"command module {name} defines no register(subparsers)")
        module.register(sub)
    return parser


def done(message: str) -> int:
    """A subcommand's last word: what it did, on stderr (stdout is for data); exit status 0."""
    print(message, file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    with one_line_errors():
        parser = build_parser()
    args = parser.parse_args(argv)
    with one_line_errors():
        rc = args.func(args)
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
