"""Every paired comparison on one eval set (the plan: kmedqa.stats.compare; the tests: kmedqa.stats.paired)."""

from kmedqa.io import write_json
from kmedqa.stats.compare import compare_eval_set
from kmedqa.workflow import run_script


def main(smk):
    cfg = smk.params.compare
    files = {tuple(run): path for run, path in zip(smk.params.runs, smk.input.scores, strict=True)}
    comparisons = compare_eval_set(
        smk.wildcards.eval_set,
        files,
        cfg.get("metrics", ["mcq_strict", "rougeL_ko"]),
        resamples=cfg.get("resamples", 10000),
        seed=smk.params.seed,
        ci_method=cfg.get("ci_method", "percentile"),
    )
    write_json(smk.output.comparisons, comparisons)


run_script(snakemake, main)  # noqa: F821
