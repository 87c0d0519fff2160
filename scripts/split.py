"""Split normalized items into train/val/test with a manifest (counts and hashes)."""

from pathlib import Path

from kmedqa.data.split import write_split
from kmedqa.items import read_items
from kmedqa.workflow import run_script


def main(smk):
    spec = smk.params.split
    items = read_items(smk.input.qa)
    write_split(
        items,
        Path(smk.output.manifest).parent,
        ratios=tuple(spec["ratios"]),
        seed=smk.params.seed,
        strata=tuple(spec["strata"]),
        mode=spec["mode"],
        key=spec.get("key"),
        exclude=tuple(spec["exclude"]),
        expect=smk.params.expect,
        name=smk.wildcards.dataset,
    )


run_script(snakemake, main)  # noqa: F821
