"""Train one (Q)LoRA adapter: see kmedqa.training."""

from kmedqa.items import read_items
from kmedqa.training import train
from kmedqa.workflow import run_script


def main(smk):
    train_items = [it for f in smk.input.train for it in read_items(f)]
    val_items = [it for f in smk.input.val for it in read_items(f)]
    train(
        model_json=smk.input.model,
        train_items=train_items,
        val_items=val_items,
        formats=smk.params.formats,
        training=smk.params.training,
        seed=smk.params.seed,
        adapter_dir=smk.output.adapter,
        loss_csv=smk.output.loss,
        summary_json=smk.output.summary,
        checkpoint_dir=smk.params.checkpoint_dir,
    )


run_script(snakemake, main)  # noqa: F821
