"""Fig. 2 (loss curves) and the LoRA, training and environment tables."""

import csv

from kmedqa.io import read_json
from kmedqa.paper.figures import loss_curves
from kmedqa.paper.tables import environment_table, lora_table, training_table
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
        smk.output[0].rsplit(".", 1)[0],
    )
    summaries = {n: read_json(f) for n, f in zip(names, smk.input.summaries, strict=True)}
    lora_table(summaries).write(smk.output[2], smk.output[3])
    training_table(summaries).write(smk.output[4], smk.output[5])
    generations = [read_json(f) for f in smk.input.generations]
    environment_table(read_json(smk.input.env), generations).write(smk.output[6], smk.output[7])


run_script(snakemake, main)  # noqa: F821
