"""``training.args`` checked against TRL's ``SFTConfig`` when the config loads.

``snakemake -n`` stops on a misspelt option (``max_stpes``: names the key and the
nearest valid name), a value of the wrong type or an unknown choice of an enum option
(``lr_scheduler_type: cosin``), before any job runs. Importing trl takes seconds (13 s
measured on the 2-core dev machine), too slow for every Snakefile parse, so the fields
are read from :data:`FIELDS_FILE`, generated from the installed TRL by
``python -m kmedqa.training.args`` (a test checks it matches the installed TRL).

YAML 1.1 reads ``2e-4`` (no dot) as text: a numeric option given a number-like string is
coerced to the number, with a note saying so (:func:`check_training_args` returns them).
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import json
import re
import sys
import types
import typing
from importlib.resources import files
from typing import Any

from kmedqa.errors import ConfigError

FIELDS_FILE = "training/sft_fields.json"

#: kmedqa's own names accepted in training.args (translated by :func:`sft_config`).
ALIASES = {"warmup_ratio": {"kinds": ["float", "int"]}}

#: Set by kmedqa itself from other config keys; naming them in training.args is an error.
RESERVED = ("output_dir", "seed", "data_seed")

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _kinds(tp: Any) -> tuple[set[str], list[str] | None]:
    """JSON kinds a type annotation accepts, and the choices of an enum in it."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        kinds: set[str] = set()
        choices: list[str] | None = None
        for arg in typing.get_args(tp):
            k, c = _kinds(arg)
            kinds |= k
            choices = c if c is not None else choices
        return kinds, choices
    if origin is typing.Literal:
        return {type(a).__name__ if a is not None else "null" for a in typing.get_args(tp)}, None
    if tp is type(None):
        return {"null"}, None
    if tp is bool:
        return {"bool"}, None
    if tp is int:
        return {"int"}, None
    if tp is float:
        return {"float", "int"}, None
    if tp is str:
        return {"str"}, None
    if origin in (list, tuple) or tp in (list, tuple):
        return {"list"}, None
    if origin is dict or tp is dict:
        return {"dict"}, None
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"str"}, sorted(str(m.value) for m in tp)
    return {"any"}, None


def sft_field_table() -> dict[str, Any]:
    """Every ``SFTConfig`` field with its accepted kinds and choices (imports trl: slow)."""
    import trl
    from trl import SFTConfig

    hints = typing.get_type_hints(SFTConfig)
    fields = {}
    for f in dataclasses.fields(SFTConfig):
        if not f.init:
            continue
        kinds, choices = _kinds(hints.get(f.name, f.type))
        entry: dict[str, Any] = {"kinds": sorted(kinds)}
        if choices is not None and "any" not in kinds:
            entry["choices"] = choices
        fields[f.name] = entry
    return {"trl_version": trl.__version__, "fields": dict(sorted(fields.items()))}


def load_field_table() -> dict[str, Any]:
    return json.loads(files("kmedqa").joinpath(FIELDS_FILE).read_text(encoding="utf-8"))


# value type -> kind name, checked in this order (to isinstance a bool is an int too)
_KINDS = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    return next((name for t, name in _KINDS.items() if isinstance(value, t)), type(value).__name__)


def check_training_args(args: dict[str, Any], table: dict[str, Any] | None = None) -> list[str]:
    """Validate (and coerce number-like strings in) ``args`` in place; return the notes.

    Raises :class:`ConfigError` naming ``training.args.<key>`` for an unknown option (with
    the nearest valid name), a reserved one, a wrong type or an unknown choice."""
    table = table or load_field_table()
    fields = {**table["fields"], **ALIASES}
    notes = []
    for key in list(args):
        where = f"training.args.{key}"
        if key in RESERVED:
            raise ConfigError(f"{where}: set by kmedqa (output_dir from the rule, seeds from seed)")
        if key not in fields:
            near = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(
                f"{where}: not an option of TRL {table['trl_version']} SFTConfig{hint}"
            )
        spec = fields[key]
        kinds = set(spec["kinds"])
        value = args[key]
        kind = _kind_of(value)
        if "any" in kinds or kind in kinds:
            pass
        elif kind == "str" and kinds & {"int", "float"} and _NUMBER.match(value.strip()):
            number = float(value)
            if "float" not in kinds:
                if not number.is_integer():
                    raise ConfigError(f"{where}: must be an integer, got {value!r}")
                number = int(number)
            args[key] = number
            notes.append(
                f"{where}: {value!r} is text in YAML; read as the number {number!r} "
                "(write it with a dot, e.g. 2.0e-4, to silence this note)"
            )
            continue
        else:
            want = " or ".join(sorted(kinds - {"null"})) + (" or null" if "null" in kinds else "")
            raise ConfigError(f"{where}: must be {want}, got {kind} {value!r}")
        if "choices" in spec and isinstance(value, str) and value not in spec["choices"]:
            near = difflib.get_close_matches(value, spec["choices"], n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(
                f"{where}: {value!r} is not one of {', '.join(spec['choices'])}{hint}"
            )
    return notes


def main() -> int:  # pragma: no cover - regenerates the committed field list
    path = files("kmedqa").joinpath(FIELDS_FILE)
    text = json.dumps(sft_field_table(), indent=1, sort_keys=True) + "\n"
    with open(str(path), "w", encoding="utf-8") as fh:
        fh.write(text)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
