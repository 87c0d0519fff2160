"""Seed-aware results of one eval set: per-seed values, mean, sd, two-level CIs (kmedqa.stats.ablation)."""

from kmedqa.io import write_json
from kmedqa.stats.ablation import seed_report
from kmedqa.workflow import run_script


def main(smk):
    cfg = smk.params.compare
    runs = [tuple(r) for r in smk.params.runs]
    files = dict(zip(runs, smk.input.scores, strict=True))
    report = seed_report(
        smk.wildcards.eval_set,
        runs,
        files,
        cfg["metrics"],
        resamples=cfg["resamples"],
        seed=smk.params.seed,
        config_seed=smk.params.seed,
    )
    write_json(smk.output.report, report)


run_script(snakemake, main)  # noqa: F821
