"""Train one (Q)LoRA adapter: see kmedqa.training."""

from kmedqa.items import read_items
from kmedqa.training import train
from kmedqa.workflow import run_script, stage_outputs


def main(smk):
    train(
        model_json=smk.input.model,
        train_items=[it for f in smk.input.train for it in read_items(f)],
        val_items=[it for f in smk.input.val for it in read_items(f)],
        formats=smk.params.formats,
        training=smk.params.training,
        seed=smk.params.seed,
        **stage_outputs(smk),
    )


run_script(snakemake, main)  # noqa: F821
