"""The judge rubric as versioned data, and the one validator every backend's reply goes through.

A rubric is a YAML file (``judge/rubric_ko_v1.yaml`` ships with the package) with
``id``, ``version``, ``criteria`` (``key``, Korean and English names, description,
anchors), ``system`` / ``user_template`` / ``tool_instruction`` / ``json_instruction``
templates and the ``tool`` definition (name, description, JSON ``input_schema``).
Scores are valid only when they satisfy ``tool.input_schema``: an integer in the
rubric's scale for every criterion, an optional ``rationale`` string, nothing else.
A reply that does not is *invalid*; nothing is ever guessed or rounded into range.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from kmedqa.errors import ConfigError

DEFAULT_RUBRIC = "rubric_ko_v1"
_REQUIRED = ("id", "version", "criteria", "system", "user_template", "tool")


@dataclass(frozen=True)
class Rubric:
    id: str
    version: str
    criteria: tuple[dict[str, Any], ...]
    system_template: str
    user_template: str
    tool: dict[str, Any]
    tool_instruction: str = ""
    json_instruction: str = ""
    scale: tuple[int, int] = (1, 5)
    source: str = ""
    data: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(c["key"] for c in self.criteria)

    @property
    def tool_name(self) -> str:
        return self.tool["name"]

    @property
    def tag(self) -> str:
        return f"{self.id}@{self.version}"

    def criteria_block(self) -> str:
        lo, hi = self.scale
        lines = []
        for c in self.criteria:
            lines.append(f"- {c['name_ko']} ({c['key']}, {lo}~{hi}점): {c['description']}")
            for score, text in sorted((c.get("anchors") or {}).items(), key=lambda kv: int(kv[0])):
                lines.append(f"    {score}점: {text}")
        return "\n".join(lines)

    def system(self) -> str:
        return self.system_template.format(criteria_block=self.criteria_block()).strip()

    def user(self, question: str, reference: str, answer: str, *, mode: str) -> str:
        """The user turn; ``mode`` is ``"tool"`` (Anthropic) or ``"json"`` (local models)."""
        text = self.user_template.format(question=question, reference=reference, answer=answer)
        if mode == "tool":
            extra = self.tool_instruction.format(tool_name=self.tool_name)
        elif mode == "json":
            extra = self.json_instruction.format()
        else:
            raise ValueError(f"unknown prompt mode {mode!r}")
        return (text.rstrip() + "\n\n" + extra.strip()).strip()

    def validate(self, obj: Any) -> tuple[dict[str, Any] | None, str | None]:
        """``(scores, None)`` when ``obj`` satisfies the tool schema, else ``(None, why)``.

        ``scores`` holds an ``int`` per criterion key and ``rationale`` (str or None).
        """
        validator = _validator(json.dumps(self.tool["input_schema"], sort_keys=True))
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
        if errors:
            e = errors[0]
            where = "/".join(str(p) for p in e.absolute_path) or "reply"
            return None, f"{where}: {e.message}"[:300]
        assert isinstance(obj, dict)
        out: dict[str, Any] = {}
        for k in self.keys:
            v = obj[k]
            if isinstance(v, bool) or int(v) != v:  # schema already checked; belt and braces
                return None, f"{k}: not an integer"
            out[k] = int(v)
        r = obj.get("rationale")
        out["rationale"] = r if isinstance(r, str) else None
        return out, None


@cache
def _validator(schema_json: str):
    import jsonschema

    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


def _resolve(name_or_path: str | Path) -> tuple[str, str]:
    text = str(name_or_path)
    p = Path(text)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p.read_text(encoding="utf-8"), str(p)
    name = text if text.endswith((".yaml", ".yml")) else f"{text}.yaml"
    res = files("kmedqa").joinpath("judge").joinpath(name)
    if not res.is_file():
        raise ConfigError(
            f"judge.rubric: no rubric {text!r} (neither a YAML file nor a rubric shipped in kmedqa/judge/)"
        )
    return res.read_text(encoding="utf-8"), f"kmedqa/judge/{name}"


@cache
def load_rubric(name_or_path: str | Path = DEFAULT_RUBRIC) -> Rubric:
    """Load a rubric by packaged name (``"rubric_ko_v1"``) or YAML path; check its shape."""
    text, source = _resolve(name_or_path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"judge.rubric: {source} is not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"judge.rubric: {source} must be a mapping")
    for key in _REQUIRED:
        if key not in data:
            raise ConfigError(f"judge.rubric: {source} lacks '{key}'")
    crit = data["criteria"]
    if not isinstance(crit, list) or not crit:
        raise ConfigError(f"judge.rubric: {source}: 'criteria' must be a non-empty list")
    for c in crit:
        for k in ("key", "name_ko", "name_en", "description"):
            if not isinstance(c, dict) or not isinstance(c.get(k), str):
                raise ConfigError(f"judge.rubric: {source}: every criterion needs a string '{k}'")
    tool = data["tool"]
    if not isinstance(tool, dict) or not {"name", "input_schema"} <= set(tool):
        raise ConfigError(f"judge.rubric: {source}: 'tool' needs 'name' and 'input_schema'")
    if not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", str(tool["name"])):
        raise ConfigError(
            f"judge.rubric: {source}: tool name {tool['name']!r} is not a valid tool name"
        )
    required = set(tool["input_schema"].get("required") or [])
    missing = [c["key"] for c in crit if c["key"] not in required]
    if missing:
        raise ConfigError(f"judge.rubric: {source}: tool schema does not require {missing}")
    scale = data.get("scale") or {"min": 1, "max": 5}
    _validator(json.dumps(tool["input_schema"], sort_keys=True))  # schema itself is valid
    return Rubric(
        id=str(data["id"]),
        version=str(data["version"]),
        criteria=tuple(crit),
        system_template=data["system"],
        user_template=data["user_template"],
        tool=tool,
        tool_instruction=data.get("tool_instruction") or "",
        json_instruction=data.get("json_instruction") or "",
        scale=(int(scale["min"]), int(scale["max"])),
        source=source,
        data=data,
    )


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def find_json_object(text: str) -> Any:
    """The first JSON object in free text (a whole reply, a fenced block, or embedded).

    Returns the parsed object, or ``None`` when there is none.
    """
    if not isinstance(text, str):
        return None
    candidates = [text.strip()] + [m.group(1).strip() for m in _FENCE.finditer(text)]
    for c in candidates:
        try:
            obj = json.loads(c)
        except (json.JSONDecodeError, ValueError):
            continue
        if isinstance(obj, dict):
            return obj
    dec = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = dec.raw_decode(text, m.start())
        except (json.JSONDecodeError, ValueError):
            continue
        if isinstance(obj, dict):
            return obj
    return None


def parse_json_reply(text: str, rubric: Rubric) -> tuple[dict[str, Any] | None, str | None]:
    """Scores from a free-text reply that should hold one JSON object (local models)."""
    obj = find_json_object(text)
    if obj is None:
        return None, "no JSON object in reply"
    return rubric.validate(obj)
