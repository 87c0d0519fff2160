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
        cfg["metrics"],
        resamples=cfg["resamples"],
        seed=smk.params.seed,
        ci_method=cfg["ci_method"],
    )
    write_json(smk.output.comparisons, comparisons)


run_script(snakemake, main)  # noqa: F821
