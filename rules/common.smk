# Helpers shared by all rule files. Names of runs and eval sets, and input functions.
# kmedqa is importable by the Snakefile (which puts src/ on its path) whether installed
# or not; jobs find it through the scripts/kmedqa link, conda envs included.
import json
from pathlib import Path

from kmedqa.stats.compare import comparison_pairs
from kmedqa.generation.settings import inference_quantization
from kmedqa.data.sources import KORMEDMCQA_HUB_ID
from kmedqa.data.filters import pattern_files
from kmedqa.metrics.semantic import is_configured
from kmedqa.workflow import train_set_cpt, train_set_datasets

RESULTS = "results"

PAPER = config.get("paper", {}).get("dir", "paper")
DATASETS = config["datasets"]
EVAL_SETS = config["evaluation"]["eval_sets"]
RUNS = [(m, v) for m, variants in config["runs"].items() for v in variants]
TRAININGS = sorted({(m, v[3:]) for m, v in RUNS if v.startswith("ft-")})
TRAIN_SET_NAMES = sorted({t for _, t in TRAININGS})
FORMATS = {name: ds["format"] for name, ds in DATASETS.items()}
# train set -> its datasets, and the CPT corpus it fine-tunes after (None: the base model)
TRAIN_SETS = {t: train_set_datasets(s) for t, s in config.get("train_sets", {}).items()}
TRAIN_CPT = {t: train_set_cpt(s) for t, s in config.get("train_sets", {}).items()}
CPT_CORPORA = config.get("cpt", {}).get("corpora", {})
CPT_STAGES = sorted({(m, TRAIN_CPT[t]) for m, t in TRAININGS if TRAIN_CPT[t]})
FILTERED = sorted(d for d, ds in DATASETS.items() if ds.get("filters"))


def items_file(dataset):
    """A dataset's items as split reads them: after its declared filters, if any."""
    name = "items.filtered" if DATASETS[dataset].get("filters") else "items"
    return f"{RESULTS}/data/{dataset}/{name}.jsonl"


def base_model_json(model, train_set):
    """The model a train set fine-tunes (and its runs generate on): base, or base + CPT merged."""
    corpus = TRAIN_CPT[train_set]
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
    return inference_quantization(
        wildcards.variant,
        config["evaluation"].get("generation"),
        config.get("training"),
    )


def generation_summary(model, variant, eval_set):
    return f"{RESULTS}/generations/{model}/{variant}/{eval_set}.summary.json"


def eval_format(wildcards):
    """The eval set's declared prompt format; None: each item's own (its dataset's)."""
    return EVAL_SETS[wildcards.eval_set].get("format")


def train_inputs(wildcards):
    names = TRAIN_SETS[wildcards.train_set]
    return {
        "model": base_model_json(wildcards.model, wildcards.train_set),
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
    inputs = {
        "model": f"{RESULTS}/models/{wildcards.model}/model.json",
        "qa": eval_items(wildcards),
    }
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
    if FILTERED:
        targets.append(f"{PAPER}/tables/data_filters.md")
        targets += [f"{RESULTS}/hub/{m}/{t}" for m, t in TRAININGS]
    if JUDGE_EVAL_SETS:
        targets.append(f"{PAPER}/tables/judge.md")
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


def both(stem):
    """A figure as PDF and PNG; the PNG goes into `snakemake --report`, with its caption."""
    name = Path(stem).name
    png = report(
        f"{stem}.png",
        caption=f"../report/figures/{name}.rst",
        category=REPORT_CATEGORIES["figures"][name],
    )
    return [f"{stem}.pdf", png]


def tex_md(name):
    """A table as LaTeX and Markdown; the Markdown goes into the report."""
    md = report(
        f"{TAB}/{name}.md",
        caption=f"../report/tables/{name}.rst",
        category=REPORT_CATEGORIES["tables"][name],
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
