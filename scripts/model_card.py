"""Copy a trained adapter into a Hub-ready folder and write its model card (README.md)."""

import shutil
from pathlib import Path

from kmedqa.hub.card import metric_results, write_card
from kmedqa.io import read_json, read_jsonl
from kmedqa.workflow import run_script


def main(smk):
    out = Path(smk.output.hub)
    shutil.copytree(smk.input.adapter, out, dirs_exist_ok=True)
    results = {
        eval_set: metric_results(
            read_jsonl(path), n_resamples=smk.params.resamples, seed=smk.params.seed
        )
        for eval_set, path in zip(smk.params.eval_sets, smk.input.scores, strict=True)
    }
    configfile = smk.params.configfile
    write_card(
        out,
        model=smk.wildcards.model,
        train_set=smk.wildcards.training,  # train set [+ recipe] [@ seed]
        model_spec=read_json(smk.input.model)["spec"],
        train_summary=read_json(smk.input.summary),
        results=results,
        datasets=smk.params.datasets,
        hub=smk.params.hub,
        study=smk.params.study,
        configfile=" ".join(configfile) if configfile else None,
    )


run_script(snakemake, main)  # noqa: F821
