"""Run a dataset's declared filters (between prepare and split): see kmedqa.data.filters."""

from kmedqa.data.filters import apply_filters
from kmedqa.io import write_json, write_jsonl
from kmedqa.items import read_items
from kmedqa.workflow import run_script


def main(smk):
    items, report = apply_filters(
        read_items(smk.input.qa), smk.params.filters, dataset=smk.params.name
    )
    write_jsonl(smk.output.qa, items)
    write_json(smk.output.report, report)


run_script(snakemake, main)  # noqa: F821
