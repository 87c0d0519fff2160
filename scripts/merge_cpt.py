"""Merge a CPT adapter into its base model's weights (the SFT stage's starting model)."""

from kmedqa.training.cpt import merge_cpt
from kmedqa.workflow import run_script


def main(smk):
    merge_cpt(
        model_json=smk.input.model,
        adapter_dir=smk.input.adapter,
        corpus_name=smk.params.corpus,
        hf_dir=smk.output.weights,
        merged_json=smk.output.model,
    )


run_script(snakemake, main)  # noqa: F821
