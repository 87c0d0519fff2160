"""User-facing errors: one line naming the file, the item and the field.

Every stage raises :class:`InputError` for bad input. The CLI and the Snakemake
scripts print ``str(err)`` as a single line (no traceback) and exit non-zero.
"""

from __future__ import annotations

import contextlib
import sys


class KmedqaError(Exception):
    """Base class of errors that are the user's to fix (config, data, environment)."""


class InputError(KmedqaError):
    """Bad input data: names the file, the item (id) and the field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        item: str | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.item = None if item is None else str(item)
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file)
        if self.item:
            parts.append(f"item {self.item}")
        if self.field:
            parts.append(f"field '{self.field}'")
        where = ": ".join(parts)
        text = f"{where}: {self.message}" if where else self.message
        return " ".join(text.split())  # always one line


class ConfigError(KmedqaError):
    """A config value that cannot work (names the key)."""


@contextlib.contextmanager
def one_line_errors(prog: str = "kmedqa"):
    """Turn :class:`KmedqaError` into one line on stderr and exit status 2."""
    try:
        yield
    except KmedqaError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
