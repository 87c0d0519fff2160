"""Training recipes, grids of recipes, and seeds: which fine-tuned runs a config has.

A *recipe* is a named override of the study's ``training`` block (any LoRA field, any
SFTConfig argument under ``args``, the data ``balance``), deep-merged: mappings merge,
anything else (lists included) replaces. A *grid* expands to one recipe per point of
the product of its axes; an axis is a dotted key of ``training`` (``lora.r``,
``args.learning_rate``, ``balance``) with a list of values, and a string value that names
an entry of ``aliases`` stands for that entry's value (a module list, a balance setting,
``null`` for "off"). ``seeds`` trains one adapter per seed for every fine-tuned run.

Run names (the ``variant`` of a run, and the folder of its adapter):

    ft-<train set>[+<recipe>][@s<seed>]

- ``+<recipe>`` names a recipe of ``recipes``, or a grid point. A grid point is named by
  its values in axis order, joined by ``-``: an alias or string value by itself
  (``attn``), a number by the key's last part and the number (``r8``), a boolean or null
  by the key's last part, prefixed ``no`` for false/null (``nobalance``).
  ``ft-aihub+lora`` in ``runs`` (``lora`` a grid) stands for every point of the grid.
  A grid point whose training equals the study's ``training`` *is* the study's run
  (``ft-aihub``): it is not trained twice, and the grid table marks it.
- ``@s<seed>`` is the seed value itself (``@s43``), not its position, so adding a seed
  never renames another run. The run trained with the config's ``seed`` has no suffix, so
  a config without ``seeds`` (or with ``seeds: [<its seed>]``) and without recipes has
  exactly the runs, paths and outputs it had before recipes existed.
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass
from typing import Any

from kmedqa.errors import ConfigError

TRAIN_SET_RE = r"[A-Za-z0-9_]+"
RECIPE_RE = r"[A-Za-z0-9_][A-Za-z0-9_-]*"
VARIANT_RE = (
    rf"ft-(?P<train_set>{TRAIN_SET_RE})(?:\+(?P<recipe>{RECIPE_RE}))?(?:@s(?P<seed>[0-9]+))?"
)
# the Snakemake wildcard of a training (a fine-tuned variant without its "ft-")
TRAINING_WILDCARD = rf"{TRAIN_SET_RE}(\+{RECIPE_RE})?(@s[0-9]+)?"
VARIANT_WILDCARD = rf"base|icl|ft-{TRAINING_WILDCARD}"


@dataclass(frozen=True)
class Variant:
    train_set: str
    recipe: str | None = None
    seed: int | None = None  # None: the config's seed

    @property
    def name(self) -> str:
        out = f"ft-{self.train_set}"
        if self.recipe:
            out += f"+{self.recipe}"
        if self.seed is not None:
            out += f"@s{self.seed}"
        return out

    @property
    def stem(self) -> str:
        """The run without its seed: the runs of one recipe across seeds share it."""
        return Variant(self.train_set, self.recipe).name


def parse_variant(variant: str) -> Variant | None:
    """The parts of a fine-tuned variant; None for base / icl."""
    m = re.fullmatch(VARIANT_RE, variant)
    if not m:
        return None
    seed = m.group("seed")
    return Variant(m.group("train_set"), m.group("recipe"), None if seed is None else int(seed))


def deep_merge(base: Any, override: Any) -> Any:
    """``override`` over ``base``: mappings merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = copy.deepcopy(base)
        for k, v in override.items():
            out[k] = deep_merge(base.get(k), v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(override)


def dotted(key: str, value: Any) -> dict[str, Any]:
    """``lora.r``, 8 -> {"lora": {"r": 8}}."""
    out: Any = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def _label(key: str, value: Any, alias: str | None) -> str:
    last = key.split(".")[-1]
    if alias is not None:
        text = alias
    elif value is None or value is False:
        text = f"no{last}"
    elif value is True:
        text = last
    elif isinstance(value, int | float):
        text = f"{last}{value}"
    elif isinstance(value, str):
        text = value
    else:
        raise ConfigError(
            f"grids: axis {key}: a list or mapping value needs a name; declare it under "
            "`aliases` and use the name in the grid"
        )
    return re.sub(r"[^A-Za-z0-9_]", lambda m: {".": "p", "-": "m"}.get(m.group(), "_"), text)


def grid_points(
    name: str, axes: dict[str, list[Any]], aliases: dict[str, Any]
) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """(recipe name, training override, {axis: value label}) for every point of a grid."""
    if not axes:
        raise ConfigError(f"grids.{name}: a grid needs at least one axis")
    keys = list(axes)
    out = []
    for values in itertools.product(*(axes[k] for k in keys)):
        override: dict[str, Any] = {}
        labels = {}
        for key, value in zip(keys, values, strict=True):
            alias = value if isinstance(value, str) and value in aliases else None
            resolved = copy.deepcopy(aliases[value]) if alias is not None else value
            labels[key] = _label(key, resolved, alias)
            override = deep_merge(override, dotted(key, resolved))
        out.append(("-".join(labels[k] for k in keys), override, labels))
    return out


def _drop_nulls(d: Any) -> Any:
    """A null setting is an unset one (``balance: null`` is no balancing)."""
    if isinstance(d, dict):
        return {k: _drop_nulls(v) for k, v in d.items() if v is not None}
    return d


@dataclass
class Plan:
    """The recipes (grid points included), the grids' members, and the expanded runs."""

    recipes: dict[str, dict[str, Any]]  # name -> override of `training`
    grids: dict[str, list[dict[str, Any]]]  # grid -> [{recipe, labels, study}]
    runs: dict[str, list[str]]  # model -> variants, seeds expanded
    seeds: list[int]
    seed: int


def plan(config: dict[str, Any]) -> Plan:
    """Expand ``recipes``, ``grids`` and ``seeds`` of a (validated) config."""
    base = config.get("training")
    recipes = {k: dict(v or {}) for k, v in config.get("recipes", {}).items()}
    aliases = config.get("aliases", {})
    grids: dict[str, list[dict[str, Any]]] = {}
    for gname, axes in config.get("grids", {}).items():
        if gname in recipes:
            raise ConfigError(f"grids.{gname}: a recipe has the same name; rename one")
        members = []
        for rname, override, labels in grid_points(gname, axes, aliases):
            study = base is not None and _drop_nulls(deep_merge(base, override)) == _drop_nulls(
                base
            )
            if not study:
                if rname in recipes and recipes[rname] != override:
                    raise ConfigError(
                        f"grids.{gname}: point {rname!r} has the name of a different recipe"
                    )
                recipes[rname] = override
            members.append({"recipe": None if study else rname, "labels": labels, "study": study})
        grids[gname] = members
    seed = int(config["seed"])
    seeds = [int(s) for s in config.get("seeds") or [seed]]
    runs: dict[str, list[str]] = {}
    for model, variants in config["runs"].items():
        out: list[str] = []
        for v in variants:
            for name in _expand(v, recipes, grids, seeds, seed, model):
                if name not in out:
                    out.append(name)
        runs[model] = out
    return Plan(recipes=recipes, grids=grids, runs=runs, seeds=seeds, seed=seed)


def _expand(v, recipes, grids, seeds, seed, model) -> list[str]:
    parsed = parse_variant(v)
    if parsed is None:
        return [v]
    if parsed.recipe in grids:
        members = [m["recipe"] for m in grids[parsed.recipe]]
    elif parsed.recipe is None or parsed.recipe in recipes:
        members = [parsed.recipe]
    else:
        raise ConfigError(f"runs.{model}: {v!r} names an unknown recipe or grid {parsed.recipe!r}")
    if parsed.seed is not None:  # an explicit seed: this one only
        use = [parsed.seed]
    else:
        use = seeds
    return [
        Variant(parsed.train_set, r, None if s == seed else s).name for r in members for s in use
    ]


def training_for(
    config: dict[str, Any], training: str, schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``training`` block of a training name (``aihub+r8@s43``): the study's, with the
    recipe's override merged in (and ``schema``'s defaults filled in); the study's block
    itself when there is no recipe."""
    v = parse_variant(f"ft-{training}")
    if v is None:
        raise ConfigError(f"not a training name: {training!r}")
    if v.recipe is None:
        return config["training"]
    recipes = plan(config).recipes
    if v.recipe not in recipes:
        raise ConfigError(f"unknown recipe {v.recipe!r} in {training!r}")
    merged = deep_merge(config["training"], recipes[v.recipe])
    if schema is not None:
        from kmedqa.workflow import fill_defaults

        fill_defaults(merged, schema)
    return merged


def seed_for(config: dict[str, Any], training: str) -> int:
    v = parse_variant(f"ft-{training}")
    return int(config["seed"]) if v is None or v.seed is None else v.seed


def seed_groups(
    runs: dict[str, list[str]], seed: int
) -> dict[tuple[str, str], list[tuple[int, str]]]:
    """(model, stem) -> [(seed, variant), ...] for every fine-tuned run, in run order."""
    out: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for model, variants in runs.items():
        for v in variants:
            p = parse_variant(v)
            if p is None:
                continue
            out.setdefault((model, p.stem), []).append((seed if p.seed is None else p.seed, v))
    return out


def check_recipes(config: dict[str, Any], training_schema: dict[str, Any] | None) -> None:
    """Every recipe and grid point, merged into ``training``, must be a valid training
    block: an unknown key names the recipe and the key (before any job runs)."""
    p = plan(config)
    if p.recipes and "training" not in config:
        raise ConfigError("recipes/grids: override a `training` section, which this config lacks")
    _check_sft_args(p.recipes)
    if training_schema is None:
        return
    import jsonschema

    validator = jsonschema.Draft202012Validator(training_schema)
    for name, override in p.recipes.items():
        merged = deep_merge(config["training"], override)
        errors = sorted(validator.iter_errors(merged), key=lambda e: list(map(str, e.path)))
        if errors:
            err = errors[0]
            where = ".".join(str(x) for x in err.absolute_path) or "(training)"
            origin = "recipes" if name in config.get("recipes", {}) else "grids (point)"
            raise ConfigError(f"{origin} {name}: training.{where}: {err.message}")


def _check_sft_args(recipes: dict[str, dict[str, Any]]) -> None:
    """An ``args`` override must name SFTConfig options: the same committed field list of
    TRL's SFTConfig that checks the study's own ``training.args`` (kmedqa.training.args)."""
    from kmedqa.training.args import ALIASES, load_field_table

    known = set(load_field_table()["fields"]) | set(ALIASES)
    for name, override in recipes.items():
        args = override.get("args")
        unknown = sorted(set(args) - known) if isinstance(args, dict) else []
        if unknown:
            raise ConfigError(
                f"recipes {name}: training.args: unknown SFTConfig option(s): {', '.join(unknown)}"
            )
