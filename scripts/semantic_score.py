"""BERTScore / BLEURT of one run's section summaries on one eval set (kmedqa.metrics.semantic)."""

from kmedqa.io import read_jsonl, write_json, write_jsonl
from kmedqa.items import read_items
from kmedqa.metrics.semantic import semantic_scores
from kmedqa.workflow import run_script


def main(smk):
    outputs = {g["id"]: g["output"] for g in read_jsonl(smk.input.generations)}
    rows, meta = semantic_scores(read_items(smk.input.qa), outputs, smk.params.scoring)
    write_jsonl(smk.output.scores, rows)
    write_json(smk.output.meta, meta)


run_script(snakemake, main)  # noqa: F821
