"""The data-filter table: what each declared filter dropped, per dataset and source."""

from kmedqa.data.filters import filters_table
from kmedqa.io import read_json
from kmedqa.workflow import run_script


def main(smk):
    filters_table([read_json(f) for f in smk.input.reports]).write(*smk.output.data_filters)


run_script(snakemake, main)  # noqa: F821
