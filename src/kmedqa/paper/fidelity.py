"""How faithful a config is to its study: each reported setting beside the value used.

A study's reported settings are declared in ``experiments/fidelity/<study>.yaml``::

    study: "Song & Erdenebayar, JKSCI 31(5) 2026 (seeds/001)"
    settings:
      - setting: LoRA rank
        path: training/lora/r            # where the config holds it ("/"-separated, "*" = every key)
        published: 16                    # as the study reports it
        source: "Table 1"
      - setting: optimizer
        path: training/args/optim
        published: "Paged AdamW 8-bit"
        expected: paged_adamw_8bit       # the config value that reproduces it (default: published)
        source: "Table 2"
      - setting: system prompt
        kind: system_prompt              # the prompt format's rendered system prompt
        path: datasets/aihub/format
        published: "당신은 ..."
        deviation: "why kmedqa differs"  # a declared deviation
      - setting: answer budget (MCQ)
        kind: budget                     # the effective max_new_tokens of a format and task
        path: datasets/aihub/format
        task: mcq
        published: not reported

Other kinds: ``format`` (the prompt format's name), ``user_prompt`` (the format's user
turn rendered for the setting's ``example`` item) and settings without ``path`` (a
procedure: ``kmedqa`` says what kmedqa has or lacks). A prompt setting with ``eval_set:
<name>`` reads that eval set's own ``format`` where the config gives one, else ``path``. A config points at its file with ``fidelity: {file: ...}`` and may
declare deviations of its own (``fidelity: {deviations: {<setting>: <why>}}``, e.g. the
CPU demo). Values are read from the config and the prompt formats at run time.

A setting's status: ``matches``; ``declared deviation``; ``UNDECLARED DEVIATION`` (the
fidelity test fails on it); ``not reported`` (the study does not say; nothing to check);
``declared deviation, but the value matches`` (a stale declaration).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kmedqa.errors import ConfigError
from kmedqa.paper.tables import Table, fmt, tex_escape

NOT_REPORTED = "not reported"
NOT_SET = "not set"
MATCHES = "matches"
DECLARED = "declared deviation"
UNDECLARED = "UNDECLARED DEVIATION"
STALE = "declared deviation, but the value matches"
DESCRIBED = "described"


def load_fidelity(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"fidelity.file: {p} does not exist (a list of the study's settings)")
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    for i, s in enumerate(data.get("settings", [])):
        missing = [k for k in ("setting", "published", "source") if k not in s]
        if missing:
            raise ConfigError(f"{p}: settings[{i}] lacks {', '.join(missing)}")
    return data


def lookup(config: dict[str, Any], path: str) -> Any:
    """The value at a "/"-separated path; "*" maps over every key; NOT_SET if absent."""
    parts = path.split("/")

    def walk(node: Any, rest: list[str]) -> Any:
        if not rest:
            return node
        head, tail = rest[0], rest[1:]
        if head == "*" and isinstance(node, dict):
            vals = [walk(v, tail) for v in node.values()]
            return vals[0] if len(vals) == 1 else vals
        if isinstance(node, dict) and head in node:
            return walk(node[head], tail)
        return NOT_SET

    return walk(config, parts)


def _format(config: dict[str, Any], s: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """The prompt format of a setting: its ``eval_set``'s own ``format`` where the config
    declares one, else the format name at ``path`` (e.g. the dataset's)."""
    from kmedqa.prompts import get_format

    es = config["evaluation"]["eval_sets"].get(s.get("eval_set") or "", {})
    name = es.get("format") or lookup(config, s["path"])
    if name == NOT_SET:
        return NOT_SET, None
    return name, get_format(name)


def used_value(config: dict[str, Any], s: dict[str, Any]) -> Any:
    """What the config uses for setting ``s`` (read now, from the config and tasks.yaml)."""
    from kmedqa.prompts import render_user, system_prompt

    kind = s.get("kind", "config")
    if "path" not in s:
        return s.get("kmedqa", "–")
    if kind == "config":
        value = lookup(config, s["path"])
        if s.get("contains") and isinstance(value, list):  # e.g. the ROUGE columns compared
            value = [v for v in value if s["contains"] in str(v)]
        return value
    name, fmt_ = _format(config, s)
    if fmt_ is None:
        return NOT_SET
    if kind == "format":
        return name
    if kind == "system_prompt":
        return system_prompt(fmt_) or "(no system prompt)"
    if kind == "user_prompt":
        example = {"options": None, "task": "mcq", **s["example"]}
        return render_user(example, fmt_)
    if kind == "budget":
        override = lookup(config, f"evaluation/generation/max_new_tokens/{s['task']}")
        if override != NOT_SET:
            return override
        return (fmt_.get("max_new_tokens") or {}).get(s["task"], NOT_SET)
    raise ConfigError(f"fidelity setting {s['setting']!r}: unknown kind {kind!r}")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str) and isinstance(b, str):
        return a.strip() == b.strip()
    return a == b


def check(config: dict[str, Any], fidelity: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per reported setting: published, used, source, status, declared reason."""
    extra = (config.get("fidelity") or {}).get("deviations") or {}
    paths = (config.get("fidelity") or {}).get("paths") or {}
    names = {s["setting"] for s in fidelity.get("settings", [])}
    for key, given in (("deviations", extra), ("paths", paths)):
        for name in given:
            if name not in names:
                raise ConfigError(f"fidelity.{key}: unknown setting {name!r}")
    rows = []
    for s in fidelity.get("settings", []):
        if s["setting"] in paths:
            s = {**s, "path": paths[s["setting"]]}
        used = used_value(config, s)
        reason = extra.get(s["setting"]) or s.get("deviation")
        published = s["published"]
        if "path" not in s:
            status = DECLARED if reason else DESCRIBED
        elif published == NOT_REPORTED and "expected" not in s:
            status = NOT_REPORTED
        else:
            ok = _same(used, s.get("expected", published))
            status = (STALE if ok else DECLARED) if reason else (MATCHES if ok else UNDECLARED)
        rows.append(
            {
                "setting": s["setting"],
                "published": published,
                "used": used,
                "source": s["source"],
                "status": status,
                "reason": reason or "",
            }
        )
    return rows


def undeclared(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] == UNDECLARED]


def _cell(x: Any) -> str:
    if isinstance(x, list):
        return ", ".join(_cell(v) for v in x)
    if isinstance(x, dict):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in x.items())
    if isinstance(x, float):
        return f"{x:g}"
    return fmt(x).replace("\n", " ⏎ ")


class LongTable(Table):
    """A table that may run over pages (LaTeX longtable, wrapped columns)."""

    def latex(self) -> str:
        align = self.align or "l" * len(self.columns)
        head = " & ".join(tex_escape(c) for c in self.columns) + " \\\\"
        out = [
            "% generated by kmedqa from results/ -- do not edit",
            "{\\footnotesize",
            f"\\begin{{longtable}}{{{align}}}",
            f"\\caption{{{tex_escape(self.caption)}}}\\label{{tab:{self.name}}} \\\\",
            "\\toprule",
            head,
            "\\midrule",
            "\\endfirsthead",
            "\\toprule",
            head,
            "\\midrule",
            "\\endhead",
        ]
        for row in self.cells():
            out.append(" & ".join(tex_escape(c) for c in row) + " \\\\")
        out.append("\\bottomrule")
        out.append("\\end{longtable}")
        for n in self.notes:
            out.append(f"\\par\\smallskip {tex_escape(n)}")
        out.append("}")
        return "\n".join(out) + "\n"


def fidelity_table(sections: list[tuple[str, str, list[dict[str, Any]]]]) -> Table:
    """``sections``: (config name, study, rows of :func:`check`), one block per config."""
    t = LongTable(
        "fidelity",
        "Fidelity: each setting the study reports beside the value this config uses",
        ["config", "setting", "published", "used", "source", "status", "declared deviation: why"],
        align="p{1.3cm}p{2.0cm}p{2.9cm}p{2.9cm}p{1.5cm}p{1.4cm}p{2.9cm}",
    )
    for config_name, study, rows in sections:
        for r in rows:
            t.rows.append(
                [
                    config_name,
                    r["setting"],
                    _cell(r["published"]),
                    _cell(r["used"]),
                    r["source"],
                    r["status"],
                    r["reason"] or "–",
                ]
            )
        n_bad = len(undeclared(rows))
        t.notes.append(
            f"{config_name} vs {study}: {len(rows)} settings, "
            + ", ".join(
                f"{sum(r['status'] == st for r in rows)} {st}"
                for st in (MATCHES, DECLARED, NOT_REPORTED, DESCRIBED, STALE, UNDECLARED)
                if any(r["status"] == st for r in rows)
            )
            + (f"; {n_bad} undeclared deviation(s)." if n_bad else ".")
        )
    if not sections:
        t.notes.append("The config declares no study (no fidelity.file).")
    return t
