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
from kmedqa.recipes import check_recipes, parse_variant


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
    check_config(config, schema["properties"]["training"])


def fill_defaults(instance: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``instance`` with the ``default:`` values of ``schema`` filled in (in place)."""
    import jsonschema

    for _ in _filling_defaults(jsonschema.Draft202012Validator)(schema).iter_errors(instance):
        pass
    return instance


def check_config(config: dict[str, Any], training_schema: dict[str, Any] | None = None) -> None:
    """Cross-references the JSON schema cannot express; raises naming the key."""
    datasets = config["datasets"]
    for name, ds in datasets.items():
        if ds["loader"] == "merge":
            for src in ds.get("sources", []):
                if src not in datasets:
                    raise ConfigError(f"datasets.{name}.sources: unknown dataset {src!r}")
    corpora = config.get("cpt", {}).get("corpora", {})
    for name, spec in config.get("train_sets", {}).items():
        for d in train_set_datasets(spec):
            if d not in datasets:
                raise ConfigError(f"train_sets.{name}: unknown dataset {d!r}")
        corpus = train_set_cpt(spec)
        if corpus is not None and corpus not in corpora:
            raise ConfigError(
                f"train_sets.{name}.cpt: unknown corpus {corpus!r} (declare it in cpt.corpora)"
            )
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
            parsed = parse_variant(v)
            if parsed is not None:
                if parsed.train_set not in config.get("train_sets", {}):
                    raise ConfigError(
                        f"runs.{model}: {v!r} names an unknown train set {parsed.train_set!r}"
                    )
                if "training" not in config:
                    raise ConfigError(f"runs.{model}: {v!r} needs a training section")
    check_recipes(config, training_schema)  # an unknown override key names its recipe
    _check_semantic_metrics(config)
    _check_api_models(config)
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
    for name, spec in config["models"].items():
        if spec.get("format") is not None and spec["format"] not in formats:
            raise ConfigError(
                f"models.{name}.format: unknown prompt format {spec['format']!r} (declared: {', '.join(formats)})"
            )
    for es_name, es in config["evaluation"]["eval_sets"].items():
        if es.get("format") is not None and es["format"] not in formats:
            raise ConfigError(
                f"evaluation.eval_sets.{es_name}.format: unknown prompt format {es['format']!r} (declared: {', '.join(formats)})"
            )


API_ONLY_KEYS = ("provider", "base_url", "thinking_budget", "temperature", "price")


def is_api_model(config: dict[str, Any], model: str) -> bool:
    return config["models"][model]["source"] == "api"


def leaving_datasets(config: dict[str, Any], eval_set: str, variant: str) -> list[str]:
    """The datasets whose items an api run of ``variant`` on ``eval_set`` sends out (a
    merged dataset: itself and its sources)."""
    es = config["evaluation"]["eval_sets"][eval_set]
    names = [es["dataset"]]
    if variant == "icl":
        names.append(es.get("shots_from") or es["dataset"])
    out: list[str] = []
    while names:
        name = names.pop(0)
        if name not in out:
            out.append(name)
            names += config["datasets"][name].get("sources") or []
    return out


def may_leave_machine(config: dict[str, Any], eval_set: str, variant: str) -> bool:
    return all(
        config["datasets"][d].get("may_leave_machine") is True
        for d in leaving_datasets(config, eval_set, variant)
    )


def _check_api_models(config: dict[str, Any]) -> None:
    """api models: base/icl runs only, and only on data that may leave the machine."""
    for name, spec in config["models"].items():
        if spec["source"] != "api":
            for key in API_ONLY_KEYS:
                if key in spec:
                    raise ConfigError(f"models.{name}.{key}: only for source: api")
        elif spec.get("thinking_budget") is not None and spec["provider"] != "gemini":
            raise ConfigError(f"models.{name}.thinking_budget: only for provider: gemini")
    for model, variants in config["runs"].items():
        if not is_api_model(config, model):
            continue
        for v in variants:
            if v not in ("base", "icl"):
                raise ConfigError(
                    f"runs.{model}: {v!r} fine-tunes a hosted model (models.{model}.source: "
                    "api); api models run base and icl only"
                )
            for es in config["evaluation"]["eval_sets"]:
                for d in leaving_datasets(config, es, v):
                    if config["datasets"][d].get("may_leave_machine") is not True:
                        raise ConfigError(
                            f"runs.{model}: {v} on eval set {es} would send dataset {d!r} to the "
                            f"{config['models'][model]['provider']} API; set "
                            f"datasets.{d}.may_leave_machine: true only if that data may "
                            "leave this machine, else drop the run"
                        )
    judge = config.get("judge") or {}
    if judge.get("backend") == "local" and judge.get("model") in config["models"]:
        if is_api_model(config, judge["model"]):
            raise ConfigError(
                f"judge.model: {judge['model']!r} is a hosted model; the local judge needs a local one"
            )


def train_set_datasets(spec: list[str] | dict[str, Any]) -> list[str]:
    """The datasets of a ``train_sets`` entry (a list, or ``{datasets: [...], cpt: ...}``)."""
    return list(spec["datasets"]) if isinstance(spec, dict) else list(spec)


def train_set_cpt(spec: list[str] | dict[str, Any]) -> str | None:
    """The CPT corpus a ``train_sets`` entry fine-tunes after, or None."""
    return spec.get("cpt") if isinstance(spec, dict) else None


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


def stage_outputs(smk) -> dict[str, str]:
    """A training rule's named outputs as ``kmedqa.training.StageOutputs`` keywords.

    The train and train_cpt rules both declare ``output: adapter, loss, summary`` and
    ``params: checkpoint_dir``; their scripts pass this on as ``**stage_outputs(smk)``.
    """
    return {
        "adapter_dir": smk.output.adapter,
        "loss_csv": smk.output.loss,
        "summary_json": smk.output.summary,
        "checkpoint_dir": smk.params.checkpoint_dir,
    }
