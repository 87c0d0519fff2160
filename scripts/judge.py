"""Judge the answers of every run on one eval set (see kmedqa.judge)."""

from kmedqa.io import read_json, read_jsonl
from kmedqa.items import read_items
from kmedqa.judge.run import judge_run
from kmedqa.workflow import run_script


def main(smk):
    cfg = dict(smk.params.judge)
    if "judge_model" in smk.input.keys():  # a local judge named after one of config.models
        cfg["model"] = read_json(smk.input.judge_model)["path"]
    gens = {
        run: read_jsonl(f) for run, f in zip(smk.params.runs, smk.input.generations, strict=True)
    }
    judge_run(
        read_items(smk.input.qa),
        gens,
        cfg,
        cache_dir=smk.params.cache_dir,
        out_path=smk.output.rows,
        summary_path=smk.output.summary,
    )


run_script(snakemake, main)  # noqa: F821
