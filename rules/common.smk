# Helpers shared by all rule files. Names of runs and eval sets, and input functions.
# kmedqa is importable by the Snakefile (which puts src/ on its path) whether installed
# or not; jobs find it through the scripts/kmedqa link, conda envs included.
import json
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError

from kmedqa.stats.compare import comparison_pairs
from kmedqa.generation.settings import inference_quantization
from kmedqa.data.sources import KORMEDMCQA_HUB_ID
from kmedqa.data.filters import pattern_files
from kmedqa.metrics.semantic import is_configured
from kmedqa.workflow import may_leave_machine, train_set_cpt, train_set_datasets
from kmedqa import recipes as _recipes
import yaml as _yaml

# every generated artifact; a study may keep its own (results_dir), e.g. beside the demo's
RESULTS = config.get("results_dir", "results")

PAPER = config.get("paper", {}).get("dir", "paper")
DATASETS = config["datasets"]
EVAL_SETS = config["evaluation"]["eval_sets"]
# Runs: config.runs with recipes, grids and seeds expanded (kmedqa.recipes names them:
# ft-<train set>[+<recipe>][@s<seed>]); without them, exactly config.runs.
PLAN = _recipes.plan(config)
RUNS = [(m, v) for m, variants in PLAN.runs.items() for v in variants]
# (model, training): a training is a fine-tuned variant without "ft-" (its adapter folder)
TRAININGS = sorted({(m, v[3:]) for m, v in RUNS if v.startswith("ft-")})
TRAIN_SET_NAMES = sorted(
    {_recipes.parse_variant(f"ft-{t}").train_set for _, t in TRAININGS}
)
SEED_GROUPS = {
    k: members
    for k, members in _recipes.seed_groups(PLAN.runs, PLAN.seed).items()
    if len(members) > 1
}
_TRAINING_SCHEMA = _yaml.safe_load(
    Path(workflow.basedir, "schemas", "config.schema.yaml").read_text(encoding="utf-8")
)["properties"]["training"]


def training_settings(training):
    """The training block of one training name (the study's, or a recipe merged into it)."""
    return _recipes.training_for(config, training, _TRAINING_SCHEMA)


def training_seed(training):
    return _recipes.seed_for(config, training)


def train_set_of(training):
    """The train set of a training name (``aihub+r8@s43`` -> ``aihub``)."""
    return _recipes.parse_variant(f"ft-{training}").train_set


FORMATS = {name: ds["format"] for name, ds in DATASETS.items()}
# Hosted models (source: api): nothing to materialize, no GPU; they run base and icl only.
API_MODELS = {m for m, spec in config["models"].items() if spec["source"] == "api"}


def local_cores():
    """All cores of a local run (``--cores N``) for the model stages; a cluster executor runs
    without ``--cores``, and there the profile's ``set-threads`` gives each rule its threads.
    """
    try:
        return workflow.cores
    except WorkflowError:
        return 1


def is_api(wildcards):
    return wildcards.model in API_MODELS


KORMEDMCQA_EVAL_SETS = [
    e
    for e, es in EVAL_SETS.items()
    if DATASETS[es["dataset"]]["loader"] == "kormedmcqa"
]
# train set -> its datasets, and the CPT corpus it fine-tunes after (None: the base model)
TRAIN_SETS = {t: train_set_datasets(s) for t, s in config.get("train_sets", {}).items()}
TRAIN_CPT = {t: train_set_cpt(s) for t, s in config.get("train_sets", {}).items()}
CPT_CORPORA = config.get("cpt", {}).get("corpora", {})
CPT_STAGES = sorted(
    {
        (m, TRAIN_CPT[train_set_of(t)])
        for m, t in TRAININGS
        if TRAIN_CPT[train_set_of(t)]
    }
)
FILTERED = sorted(d for d, ds in DATASETS.items() if ds.get("filters"))


def prepare_spec(wildcards):
    """What prepare reads of a dataset: not its split, sample, filters or sharing flag, so
    that changing those reruns only the stages that use them."""
    later = ("split", "sample", "filters", "may_leave_machine")
    return {k: v for k, v in DATASETS[wildcards.dataset].items() if k not in later}


def items_file(dataset):
    """A dataset's items as split reads them: after its declared filters, if any."""
    name = "items.filtered" if DATASETS[dataset].get("filters") else "items"
    return f"{RESULTS}/data/{dataset}/{name}.jsonl"


def base_model_json(model, training):
    """The model a training fine-tunes (and its runs generate on): base, or base + CPT merged."""
    corpus = TRAIN_CPT[train_set_of(training)]
    if corpus:
        return f"{RESULTS}/cpt/{model}/{corpus}/merged/model.json"
    return f"{RESULTS}/models/{model}/model.json"


def split_file(dataset, split):
    return f"{RESULTS}/data/{dataset}/{split}.jsonl"


def eval_items_file(eval_set):
    es = EVAL_SETS[eval_set]
    return split_file(es["dataset"], es["split"])


def eval_items(wildcards):
    return eval_items_file(wildcards.eval_set)


def base_quantization(wildcards):
    """How the run's base model is loaded to generate (adapter_base; default: as trained)."""
    training = (
        training_settings(wildcards.variant[3:])
        if wildcards.variant.startswith("ft-")
        else config.get("training")
    )
    return inference_quantization(
        wildcards.variant, config["evaluation"].get("generation"), training
    )


def generation_summary(model, variant, eval_set):
    return f"{RESULTS}/generations/{model}/{variant}/{eval_set}.summary.json"


def eval_format(wildcards):
    """The run's prompt format: its model's declared one (models.<name>.format), else the
    eval set's; None: each item's own (its dataset's)."""
    model_format = config["models"][wildcards.model].get("format")
    return model_format or EVAL_SETS[wildcards.eval_set].get("format")


def train_inputs(wildcards):
    names = TRAIN_SETS[train_set_of(wildcards.training)]
    return {
        "model": base_model_json(wildcards.model, wildcards.training),
        "train": [split_file(d, "train") for d in names],
        "val": [split_file(d, "val") for d in names],
    }


def cpt_inputs(wildcards):
    path = CPT_CORPORA[wildcards.corpus]["path"]
    return {
        "model": f"{RESULTS}/models/{wildcards.model}/model.json",
        # a missing corpus: the job stops with one line saying where to put it
        "corpus": path if Path(path).exists() else [],
    }


def generate_inputs(wildcards):
    inputs = {"qa": eval_items(wildcards)}
    if not is_api(wildcards):
        inputs["model"] = f"{RESULTS}/models/{wildcards.model}/model.json"
    if wildcards.variant.startswith("ft-"):
        inputs["model"] = base_model_json(wildcards.model, wildcards.variant[3:])
        inputs["adapter"] = (
            f"{RESULTS}/train/{wildcards.model}/{wildcards.variant[3:]}/adapter"
        )
    if wildcards.variant == "icl":
        es = EVAL_SETS[wildcards.eval_set]
        inputs["shots"] = split_file(es.get("shots_from", es["dataset"]), "train")
    return inputs


SCORING = config["evaluation"].get("scoring", {})
SEMANTIC = is_configured(SCORING)


def semantic_file(model, variant, eval_set, ext):
    return f"{RESULTS}/scores/{model}/{variant}/{eval_set}.semantic.{ext}"


def score_inputs(wildcards):
    m, v, e = wildcards.model, wildcards.variant, wildcards.eval_set
    inputs = {
        "qa": eval_items(wildcards),
        "generations": f"{RESULTS}/generations/{m}/{v}/{e}.jsonl",
    }
    if SEMANTIC:
        inputs["semantic"] = semantic_file(m, v, e, "jsonl")
    return inputs


def all_semantic_meta():
    if not SEMANTIC:
        return []
    return [semantic_file(m, v, e, "json") for m, v in RUNS for e in EVAL_SETS]


def run_name(model, variant):
    return f"{model}:{variant}"


def score_file(model, variant, eval_set):
    return f"{RESULTS}/scores/{model}/{variant}/{eval_set}.jsonl"


def all_score_files():
    return [score_file(m, v, e) for m, v in RUNS for e in EVAL_SETS]


def all_summary_files():
    return [
        f"{RESULTS}/scores/{m}/{v}/{e}.summary.json" for m, v in RUNS for e in EVAL_SETS
    ]


# Seeds and grids (kmedqa.recipes): seed-aware statistics only where there is a grid or a
# run with several seeds, so a config without them has exactly today's DAG.
SEEDED = bool(SEED_GROUPS or PLAN.grids)
GRID_USES = {
    g: sorted(
        {
            (m, p.train_set)
            for m, variants in config["runs"].items()
            for p in map(_recipes.parse_variant, variants)
            if p is not None and p.recipe == g
        }
    )
    for g in PLAN.grids
}
BALANCED = [
    (m, v)
    for m, v in RUNS
    if v.startswith("ft-") and training_settings(v[3:]).get("balance")
]


def balance_runs():
    """(group, variant) of the balanced runs and the study runs of their train sets."""
    stems = {_recipes.parse_variant(v).stem for _, v in BALANCED}
    stems |= {f"ft-{_recipes.parse_variant(s).train_set}" for s in stems}
    return [
        (f"{m}:{_recipes.parse_variant(v).stem}", v)
        for m, v in RUNS
        if v.startswith("ft-")
        and _recipes.parse_variant(v).stem in stems
        and m in {bm for bm, _ in BALANCED}
    ]


def balance_eval_set():
    """The first eval set drawn from a dataset the balanced runs train on."""
    trained = {
        d for _, v in BALANCED for d in TRAIN_SETS[_recipes.parse_variant(v).train_set]
    }
    hits = [e for e, es in EVAL_SETS.items() if es["dataset"] in trained]
    return hits[0] if hits else next(iter(EVAL_SETS))


def all_targets():
    targets = [
        f"{PAPER}/numbers.tex",
        f"{PAPER}/figures/data_distribution.pdf",
        f"{PAPER}/tables/main_results.md",
        f"{PAPER}/tables/significance.md",
        f"{RESULTS}/paper/latex_status.txt",
        f"{PAPER}/tables/published_vs_reproduced.md",
        f"{PAPER}/tables/fidelity.md",
    ]
    if TRAININGS:
        targets.append(f"{PAPER}/tables/training.md")
        targets.append(f"{PAPER}/tables/decontamination.md")
        targets += [f"{RESULTS}/hub/{m}/{t}" for m, t in TRAININGS]
    if FILTERED:
        targets.append(f"{PAPER}/tables/data_filters.md")
    if JUDGE_EVAL_SETS:
        targets.append(f"{PAPER}/tables/judge.md")
    if SEEDED:
        targets += [f"{RESULTS}/stats/seeds/{e}.json" for e in EVAL_SETS]
    targets += [f"{PAPER}/tables/ablation_{g}.md" for g in PLAN.grids]
    if BALANCED:
        targets.append(f"{PAPER}/figures/ablation_balance.png")
    return targets


def raw_input(wildcards):
    ds = DATASETS[wildcards.dataset]
    if ds["loader"] == "merge":
        return [items_file(s) for s in ds["sources"]]
    if ds.get("demo"):
        return ds["path"]
    if ds["loader"] == "kormedmcqa" and ds["path"] == KORMEDMCQA_HUB_ID:
        return []  # fetched from the hub by the job
    if not Path(ds["path"]).exists():
        return []  # the job stops with one line saying where to put the dataset
    return ds["path"]


def eval_set_scores(wildcards):
    return [score_file(m, v, wildcards.eval_set) for m, v in RUNS]


# Paper outputs
FIG = f"{PAPER}/figures"
TAB = f"{PAPER}/tables"
PAPER_DATASETS = sorted(
    {d for members in TRAIN_SETS.values() for d in members}
    | {es["dataset"] for es in EVAL_SETS.values()}
)


REPORT_CATEGORIES = json.loads(
    Path(workflow.basedir, "report", "categories.json").read_text()
)


def both(stem, kind=None):
    """A figure as PDF and PNG; the PNG goes into `snakemake --report`, with its caption
    (``kind``: the caption and category of a family of figures, e.g. one per grid)."""
    name = kind or Path(stem).name
    png = report(
        f"{stem}.png",
        caption=f"../report/figures/{name}.rst",
        category=REPORT_CATEGORIES["figures"][name],
    )
    return [f"{stem}.pdf", png]


def tex_md(name, kind=None):
    """A table as LaTeX and Markdown; the Markdown goes into the report."""
    md = report(
        f"{TAB}/{name}.md",
        caption=f"../report/tables/{kind or name}.rst",
        category=REPORT_CATEGORIES["tables"][kind or name],
    )
    return [f"{TAB}/{name}.tex", md]


# Judge
JUDGE_CONFIG = {k: v for k, v in config.get("judge", {}).items() if k != "eval_sets"}
JUDGE_EVAL_SETS = config.get("judge", {}).get("eval_sets", list(EVAL_SETS))


def judge_model_ref():
    """A local judge may name one of config.models: it is materialized first."""
    if (
        JUDGE_CONFIG.get("backend") == "local"
        and JUDGE_CONFIG.get("model") in config["models"]
    ):
        return f"{RESULTS}/models/{JUDGE_CONFIG['model']}/model.json"
    return None


def judge_inputs(wildcards):
    inputs = {
        "qa": eval_items(wildcards),
        "generations": [
            f"{RESULTS}/generations/{m}/{v}/{wildcards.eval_set}.jsonl" for m, v in RUNS
        ],
    }
    if judge_model_ref():
        inputs["judge_model"] = judge_model_ref()
    return inputs
