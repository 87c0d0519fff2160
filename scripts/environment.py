"""Record the environment of this run (versions, device) for the paper."""

from kmedqa.envinfo import environment
from kmedqa.io import write_json
from kmedqa.workflow import run_script


def main(smk):
    write_json(smk.output.env, environment(smk.params.repo))


run_script(snakemake, main)  # noqa: F821
