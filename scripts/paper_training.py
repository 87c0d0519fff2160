"""Fig. 2 (loss curves) and the LoRA, training and environment tables."""

import csv

from kmedqa.io import read_json
from kmedqa.paper.figures import figure_stem, loss_curves
from kmedqa.paper.training_tables import environment_table, lora_table, training_table
from kmedqa.workflow import run_script


def read_loss(path):
    with open(path, encoding="utf-8") as fh:
        return [
            {k: (float(v) if v not in ("", None) else None) for k, v in row.items()}
            for row in csv.DictReader(fh)
        ]


def main(smk):
    names = smk.params.names
    loss_curves(
        {n: read_loss(f) for n, f in zip(names, smk.input.loss, strict=True)},
        figure_stem(smk.output.loss_curves),
    )
    summaries = {n: read_json(f) for n, f in zip(names, smk.input.summaries, strict=True)}
    lora_table(summaries).write(*smk.output.lora)
    training_table(summaries).write(*smk.output.training)
    generations = [read_json(f) for f in smk.input.generations]
    environment_table(read_json(smk.input.env), generations).write(*smk.output.environment)


run_script(snakemake, main)  # noqa: F821
