"""Continued pre-training: one causal-LM LoRA on a corpus, see kmedqa.training.cpt."""

from kmedqa.training.cpt import train_cpt
from kmedqa.workflow import run_script, stage_outputs


def main(smk):
    train_cpt(
        model_json=smk.input.model,
        corpus=smk.params.corpus_path,
        corpus_name=smk.wildcards.corpus,
        corpus_spec=smk.params.corpus_spec,
        training=smk.params.training,
        cpt=smk.params.cpt,
        seed=smk.params.seed,
        **stage_outputs(smk),
    )


run_script(snakemake, main)  # noqa: F821
