"""Read one dataset (as declared in config.datasets) into normalized items."""

from kmedqa.data.sources import load_dataset_spec
from kmedqa.io import write_jsonl
from kmedqa.workflow import run_script


def main(smk):
    items = load_dataset_spec(smk.params.name, smk.params.spec, inputs=list(smk.input))
    write_jsonl(smk.output[0], items)


run_script(snakemake, main)  # noqa: F821
