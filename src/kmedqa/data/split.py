"""Deterministic train / val / test splits of normalized items, with a manifest.

Three modes:

* ``stratified`` (default): items are grouped by ``strata`` (fields such as
  ``domain`` and ``q_type``, or ``meta.<key>``); each group is sorted by id and
  shuffled with ``random.Random(f"{seed}:{stratum}")``; group sizes are
  allocated to the splits by controlled largest-remainder rounding, so that the
  totals are as close to ``ratios`` as integers allow (largest remainder), each
  group is as close to ``ratios`` as possible, and a group of two or more items
  still gets a test item (three or more: also a val item) when another group
  can spare one, so that the totals do not move.
* ``predefined``: ``item["meta"][key]`` names the split (train / dev / val /
  validation / test / Training / Validation / fewshot, see :data:`SPLIT_ALIASES`).
* ``all_test``: everything is test (eval-only sets); train and val are empty.

:func:`write_split` writes ``train.jsonl``, ``val.jsonl``, ``test.jsonl``
(canonical JSON, sorted by id) and ``manifest.json``; reruns are byte-identical.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kmedqa.data.expect import check_expected
from kmedqa.errors import ConfigError, InputError
from kmedqa.io import dumps, sha256_file, sha256_text, write_json, write_jsonl
from kmedqa.items import FIELDS, validate_items

SPLIT_NAMES = ("train", "val", "test")
# predefined split names → ours. KorMedMCQA's "fewshot" rows are prompt examples:
# they go with train, the pool that in-context examples are drawn from.
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "fewshot": "train",
    "dev": "val",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
DEFAULT_RATIOS = (0.8, 0.1, 0.1)
DEFAULT_STRATA = ("domain", "q_type")
# when rounding leaves a unit to give away, smaller splits come first (test, then val)
_PRIORITY = (2, 1, 0)


# --------------------------------------------------------------------------- checks


def check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    if len(ratios) != 3:
        raise ConfigError(f"ratios must be three numbers (train val test), got {list(ratios)}")
    r = tuple(float(x) for x in ratios)
    if any(not math.isfinite(x) or x < 0 for x in r) or abs(sum(r) - 1.0) > 1e-6:
        raise ConfigError(f"ratios must be >= 0 and sum to 1, got {list(r)}")
    return r  # type: ignore[return-value]


def check_strata(strata: Sequence[str]) -> tuple[str, ...]:
    for key in strata:
        if key not in FIELDS and not (key.startswith("meta.") and len(key) > 5):
            raise ConfigError(
                f"unknown stratum {key!r} (use an item field such as domain, q_type, or meta.<key>)"
            )
    return tuple(strata)


def _value(item: dict[str, Any], key: str) -> Any:
    if key.startswith("meta."):
        return item["meta"].get(key[5:])
    return item.get(key)


def _label(value: Any) -> str:
    return value if isinstance(value, str) else dumps(value)


def stratum_of(item: dict[str, Any], strata: Sequence[str]) -> tuple[str, ...]:
    return tuple(_label(_value(item, key)) for key in strata)


# --------------------------------------------------------------------------- allocation


def _largest_remainder(total: int, ratios: Sequence[float]) -> list[int]:
    raw = [total * r for r in ratios]
    out = [math.floor(x) for x in raw]
    order = sorted(range(len(ratios)), key=lambda j: (-(raw[j] - out[j]), _PRIORITY[j]))
    for j in order[: total - sum(out)]:
        out[j] += 1
    return out


def allocate(sizes: dict[Any, int], ratios: Sequence[float]) -> dict[Any, list[int]]:
    """Split each group size into (train, val, test) counts.

    Controlled rounding: start from the floors of ``n * ratio``, hand out the
    remaining units by largest fractional part while keeping every split's
    total at its largest-remainder target, then give a test item to groups of
    >= 2 items and a val item to groups of >= 3 that have none, by swapping one
    unit with a group that has more than one, so the totals stay on target (when
    no group can give one back, the small group goes without).
    """
    ratios = check_ratios(ratios)
    keys = sorted(sizes)
    rank = {k: i for i, k in enumerate(keys)}
    target = _largest_remainder(sum(sizes.values()), ratios)
    alloc = {k: [math.floor(sizes[k] * r) for r in ratios] for k in keys}
    row_left = {k: sizes[k] - sum(alloc[k]) for k in keys}
    col_left = [target[j] - sum(alloc[k][j] for k in keys) for j in range(3)]
    cells = sorted(
        ((k, j) for k in keys for j in range(3) if ratios[j] > 0),
        key=lambda c: (
            -(sizes[c[0]] * ratios[c[1]] - alloc[c[0]][c[1]]),
            _PRIORITY[c[1]],
            rank[c[0]],
        ),
    )
    for k, j in cells:
        if row_left[k] > 0 and col_left[j] > 0:
            alloc[k][j] += 1
            row_left[k] -= 1
            col_left[j] -= 1
    for k in keys:  # rare leftovers (ties between groups): any split still below target
        while row_left[k] > 0:
            open_cols = [
                j
                for j in sorted(range(3), key=lambda j: _PRIORITY[j])
                if col_left[j] > 0 and ratios[j] > 0
            ]
            j = open_cols[0] if open_cols else max(range(3), key=lambda j: ratios[j])
            alloc[k][j] += 1
            row_left[k] -= 1
            col_left[j] -= 1
    for j, min_size in ((2, 2), (1, 3)):  # test for groups >= 2, then val for groups >= 3
        if ratios[j] <= 0:
            continue
        for k in keys:
            if sizes[k] < min_size or alloc[k][j] > 0:
                continue
            donor = max(
                (d for d in range(3) if d != j and alloc[k][d] > 1),
                key=lambda d: alloc[k][d],
                default=None,
            )
            # only when another group can give a unit of split j back to ``donor``: totals stay on target
            others = [o for o in keys if o != k and alloc[o][j] > 1]
            if donor is None or not others:
                continue
            o = max(others, key=lambda o: (alloc[o][j] - sizes[o] * ratios[j], -rank[o]))
            alloc[k][donor] -= 1
            alloc[k][j] += 1
            alloc[o][j] -= 1
            alloc[o][donor] += 1
    return alloc


# --------------------------------------------------------------------------- the three modes


def stratified_split(
    items: Sequence[dict[str, Any]],
    ratios: Sequence[float] = DEFAULT_RATIOS,
    seed: int = 42,
    strata: Sequence[str] = DEFAULT_STRATA,
) -> dict[str, list[dict[str, Any]]]:
    """``{"train": [...], "val": [...], "test": [...]}``, each sorted by id (see module doc)."""
    ratios = check_ratios(ratios)
    strata = check_strata(strata)
    validate_items(items)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        groups[stratum_of(item, strata)].append(item)
    alloc = allocate({k: len(v) for k, v in groups.items()}, ratios)
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLIT_NAMES}
    for key in sorted(groups):
        members = sorted(groups[key], key=lambda it: it["id"])
        random.Random(f"{seed}:{'|'.join(key)}").shuffle(members)
        start = 0
        for name, n in zip(SPLIT_NAMES, alloc[key], strict=True):
            out[name].extend(members[start : start + n])
            start += n
    return {name: sorted(out[name], key=lambda it: it["id"]) for name in SPLIT_NAMES}


def predefined_split(
    items: Sequence[dict[str, Any]],
    key: str,
    aliases: dict[str, str] | None = None,
    exclude: Sequence[str] = (),
) -> dict[str, list[dict[str, Any]]]:
    """Split by ``item["meta"][key]`` (``key`` may also be written ``meta.<key>``).

    ``exclude``: source split names whose items go into no split (KorMedMCQA's
    ``fewshot`` rows, when a study's train split does not count them)."""
    aliases = SPLIT_ALIASES if aliases is None else aliases
    drop = {x.strip().lower() for x in exclude}
    meta_key = key[5:] if key.startswith("meta.") else key
    validate_items(items)
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLIT_NAMES}
    for item in sorted(items, key=lambda it: it["id"]):
        value = item["meta"].get(meta_key)
        if not isinstance(value, str) or not value.strip():
            raise InputError(
                f"missing split name (got {value!r})", item=item["id"], field=f"meta.{meta_key}"
            )
        if value.strip().lower() in drop:
            continue
        name = aliases.get(value.strip().lower())
        if name not in SPLIT_NAMES:
            known = ", ".join(sorted(aliases))
            raise InputError(
                f"unknown split name {value!r} (known: {known})",
                item=item["id"],
                field=f"meta.{meta_key}",
            )
        out[name].append(item)
    return out


def all_test_split(items: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    validate_items(items)
    return {"train": [], "val": [], "test": sorted(items, key=lambda it: it["id"])}


# --------------------------------------------------------------------------- files


def items_sha256(items: Sequence[dict[str, Any]]) -> str:
    """Hash of the items as a canonical JSON-lines file sorted by id (what the loaders write)."""
    return sha256_text("".join(dumps(it) + "\n" for it in sorted(items, key=lambda it: it["id"])))


def _counts(items: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for item in items:
        counts[_label(item["domain"])][_label(item["q_type"])] += 1
    return {d: dict(sorted(q.items())) for d, q in sorted(counts.items())}


MODES = ("stratified", "predefined", "all_test")


def resolve_mode(
    mode: str | None, key: str | None, predefined: str | None, all_test: bool
) -> tuple[str, str | None]:
    """(mode, predefined key) from either ``mode``/``key`` (config style) or ``predefined``/``all_test``."""
    if predefined is not None and all_test:
        raise ConfigError("choose either a predefined split key or all_test, not both")
    implied = "all_test" if all_test else "predefined" if predefined is not None else None
    if mode is None:
        mode = implied or "stratified"
    elif mode not in MODES:
        raise ConfigError(f"split mode {mode!r} is not one of {', '.join(MODES)}")
    elif implied is not None and implied != mode:
        raise ConfigError(
            f"split mode {mode!r} contradicts {'all_test' if all_test else 'predefined'}"
        )
    key = key if key is not None else predefined
    if mode == "predefined" and not key:
        raise ConfigError("split mode 'predefined' needs the meta key that names each item's split")
    return mode, key if mode == "predefined" else None


def write_split(
    items: Sequence[dict[str, Any]],
    outdir: str | Path,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    seed: int = 42,
    strata: Sequence[str] = DEFAULT_STRATA,
    predefined: str | None = None,
    all_test: bool = False,
    input_file: str | Path | None = None,
    *,
    mode: str | None = None,
    key: str | None = None,
    exclude: Sequence[str] = (),
    expect: dict[str, Any] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Split ``items`` and write ``outdir/{train,val,test}.jsonl`` and ``manifest.json``.

    The mode is given either as ``predefined=META_KEY`` / ``all_test=True`` or,
    as in the config, ``mode="stratified"|"predefined"|"all_test"`` with ``key``
    for predefined. Every item is validated before anything is written.
    Returns the manifest. ``input_file`` only names the input in error messages.
    ``exclude`` (predefined mode): source split names left out of every split.
    ``expect``: the study's reported split counts (``datasets.<name>.expect``, see
    :mod:`kmedqa.data.expect`); differences become warnings in ``manifest["expect"]``.
    """
    mode, predefined = resolve_mode(mode, key, predefined, all_test)
    all_test = mode == "all_test"
    validate_items(items, file=input_file)
    if all_test:
        parts = all_test_split(items)
    elif predefined is not None:
        try:
            parts = predefined_split(items, predefined, exclude=exclude)
        except InputError as err:
            raise InputError(err.message, file=input_file, item=err.item, field=err.field) from None
    else:
        parts = stratified_split(items, ratios, seed, strata)
    outdir = Path(outdir)
    files = {}
    for name in SPLIT_NAMES:
        path = outdir / f"{name}.jsonl"
        write_jsonl(path, parts[name])
        files[name] = {"path": path.name, "n": len(parts[name]), "sha256": sha256_file(path)}
    stratified = mode == "stratified"
    manifest = {
        "mode": mode,
        "predefined_key": predefined if mode == "predefined" else None,
        "seed": seed if stratified else None,
        "ratios": list(check_ratios(ratios)) if stratified else None,
        "strata": list(strata) if stratified else None,
        "input": {"n_items": len(items), "sha256": items_sha256(items)},
        "sources": sorted({_label(it["dataset"]) for it in items}),
        "totals": {name: len(parts[name]) for name in SPLIT_NAMES},
        "per_source": {
            name: dict(
                sorted(
                    Counter(
                        (it.get("meta") or {}).get("source") or it["dataset"] for it in parts[name]
                    ).items()
                )
            )
            for name in SPLIT_NAMES
        },
        "counts": {name: _counts(parts[name]) for name in SPLIT_NAMES},
        "files": files,
    }
    if mode == "predefined" and exclude:
        manifest["excluded"] = {
            "splits": list(exclude),
            "n": len(items) - sum(len(p) for p in parts.values()),
        }
    checked = check_expected(name or outdir.name, expect, parts)
    if checked is not None:
        manifest["expect"] = checked
    write_json(outdir / "manifest.json", manifest)
    return manifest
