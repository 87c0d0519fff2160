"""Read one dataset (as declared in config.datasets) into normalized items."""

from kmedqa.data.sources import load_dataset_spec
from kmedqa.io import write_json, write_jsonl
from kmedqa.workflow import input_files, run_script


def main(smk):
    items, report = load_dataset_spec(
        smk.params.name, smk.params.spec, inputs=input_files(smk.input.raw)
    )
    write_jsonl(smk.output.qa, items)
    write_json(smk.output.report, report)


run_script(snakemake, main)  # noqa: F821
