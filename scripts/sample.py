"""A declared, seeded sample of a test split (e.g. the study's 66 per question type)."""

from kmedqa.data.sample import sample_items
from kmedqa.errors import ConfigError
from kmedqa.io import write_jsonl
from kmedqa.items import read_items
from kmedqa.workflow import run_script


def main(smk):
    spec = smk.params.sample
    if not spec:
        raise ConfigError(
            f"an eval set uses split 'sample' but datasets.{smk.wildcards.dataset}.sample is not set"
        )
    items = read_items(smk.input.test)
    write_jsonl(
        smk.output.sample,
        sample_items(items, n=spec["n"], per=spec["per"], seed=spec["seed"]),
    )


run_script(snakemake, main)  # noqa: F821
