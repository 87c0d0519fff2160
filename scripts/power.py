"""Power analysis: the published 3.0%p question, MDE curves, observed comparisons."""

from kmedqa.io import read_json, write_json
from kmedqa.stats.compare import power_report
from kmedqa.workflow import run_script


def main(smk):
    comparisons = [c for f in smk.input.comparisons for c in read_json(f)]
    write_json(smk.output.power, power_report(comparisons))


run_script(snakemake, main)  # noqa: F821
