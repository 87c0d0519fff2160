"""Glue between Snakemake and the package: config checks and script entry points.

Scripts under ``scripts/`` call :func:`run_script`: logging and stderr go to the rule's
log file, and a :class:`~kmedqa.errors.KmedqaError` ends the job with one line (in the
log and on the console) instead of a traceback.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from kmedqa.errors import ConfigError, KmedqaError


def _filling_defaults(validator_class: Any) -> Any:
    """``validator_class`` that also sets each missing property that declares a ``default:``.

    As Snakemake's ``validate(..., set_default=True)``: the default is set before the
    property's own schema is checked, so an object defaulting to ``{}`` gets its members'
    defaults too. Defaults belong outside ``oneOf``/``anyOf`` branches (a branch that
    fails would still have set them).
    """
    import jsonschema

    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for name, sub in props.items():
                if isinstance(sub, dict) and "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from check_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": properties})


def validate_config(config: dict[str, Any], schema_path: str) -> None:
    """Validate against the JSON schema and fill in its ``default:`` values (in place);
    the first error names its key in one line."""
    import jsonschema
    import yaml

    with open(schema_path, encoding="utf-8") as fh:
        schema = yaml.safe_load(fh)
    validator = _filling_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(
        validator.iter_errors(config),
        key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))),
    )
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ConfigError(f"config key {where}: {err.message}{more}; see {schema_path}")
    check_config(config)


def check_config(config: dict[str, Any]) -> None:
    """Cross-references the JSON schema cannot express; raises naming the key."""
    datasets = config["datasets"]
    for name, ds in datasets.items():
        if ds["loader"] == "merge":
            for src in ds.get("sources", []):
                if src not in datasets:
                    raise ConfigError(f"datasets.{name}.sources: unknown dataset {src!r}")
    for name, members in config.get("train_sets", {}).items():
        for d in members:
            if d not in datasets:
                raise ConfigError(f"train_sets.{name}: unknown dataset {d!r}")
    for es_name, es in config["evaluation"]["eval_sets"].items():
        if es["dataset"] not in datasets:
            raise ConfigError(
                f"evaluation.eval_sets.{es_name}.dataset: unknown dataset {es['dataset']!r}"
            )
        if es.get("shots_from") and es["shots_from"] not in datasets:
            raise ConfigError(
                f"evaluation.eval_sets.{es_name}.shots_from: unknown dataset {es['shots_from']!r}"
            )
    for model, variants in config["runs"].items():
        if model not in config["models"]:
            raise ConfigError(f"runs.{model}: unknown model (not in models)")
        for v in variants:
            if v.startswith("ft-"):
                if v[3:] not in config.get("train_sets", {}):
                    raise ConfigError(f"runs.{model}: {v!r} names an unknown train set {v[3:]!r}")
                if "training" not in config:
                    raise ConfigError(f"runs.{model}: {v!r} needs a training section")
    _check_semantic_metrics(config)
    if config.get("training", {}).get("args"):
        from kmedqa.training.args import check_training_args

        for note in check_training_args(config["training"]["args"]):
            print(f"kmedqa: note: {note}", file=sys.stderr)
    from kmedqa.prompts import load_tasks

    formats = load_tasks()["formats"]
    for name, ds in datasets.items():
        if ds["format"] not in formats:
            raise ConfigError(
                f"datasets.{name}.format: unknown prompt format {ds['format']!r} (declared: {', '.join(formats)})"
            )
    for es_name, es in config["evaluation"]["eval_sets"].items():
        if es.get("format") is not None and es["format"] not in formats:
            raise ConfigError(
                f"evaluation.eval_sets.{es_name}.format: unknown prompt format {es['format']!r} (declared: {', '.join(formats)})"
            )


def _check_semantic_metrics(config: dict[str, Any]) -> None:
    """A compared BERTScore/BLEURT/aggregate metric needs its model configured."""
    from kmedqa.metrics.semantic import AGGREGATE_COLUMN, scoring_settings

    scoring = scoring_settings(config["evaluation"].get("scoring"))
    for metric in config.get("compare", {}).get("metrics", []):
        needs = {"bertscore": "bertscore" in metric, "bleurt": "bleurt" in metric}
        if metric == AGGREGATE_COLUMN:
            needs = {"bertscore": True, "bleurt": True}
        for name, needed in needs.items():
            if needed and not scoring[name]:
                raise ConfigError(
                    f"compare.metrics: {metric} needs evaluation.scoring.{name}.model "
                    "(or drop it from compare.metrics)"
                )


@contextlib.contextmanager
def _log_to(path: str | None):
    if not path:
        yield
        return
    with open(path, "w", encoding="utf-8") as fh:
        old = sys.stderr
        sys.stderr = fh
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            yield
        finally:
            root.removeHandler(handler)
            sys.stderr = old


def cpu_threads(setting: Any, job_threads: int | None) -> int | None:
    """Threads a CPU job may use: ``cpu_threads`` from the config, else Snakemake's.

    ``auto`` means every core this process may run on. Snakemake sets OMP_NUM_THREADS to a
    job's ``threads``, which ``--cores 1`` (one GPU job at a time) caps at 1; the demo
    config says ``cpu_threads: auto`` so that its one job at a time uses both cores.
    """
    if setting in (None, "snakemake"):
        return job_threads
    if setting == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return int(setting)


def _apply_threads(n: int | None) -> None:
    if not n:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def run_script(snakemake, main: Callable[[Any], Any]) -> None:
    """Run ``main(snakemake)`` with its log captured and user errors on one line."""
    log_path = snakemake.log[0] if len(snakemake.log) else None
    console = sys.stderr
    _apply_threads(
        cpu_threads(snakemake.config.get("cpu_threads"), getattr(snakemake, "threads", None))
    )
    with _log_to(log_path):
        logging.getLogger("fontTools").setLevel(logging.WARNING)
        try:
            main(snakemake)
        except KmedqaError as err:
            msg = f"kmedqa: error: {err}"
            print(msg, file=sys.stderr)
            print(msg, file=console)
            raise SystemExit(1) from None
        except Exception:  # a bug, not bad input: keep the traceback in the log
            traceback.print_exc(file=sys.stderr)
            raise


def input_files(value: str | list[str]) -> list[str]:
    """A named input as a list of paths (Snakemake gives a single path as a string)."""
    return [value] if isinstance(value, str) else list(value)
