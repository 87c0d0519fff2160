"""Make a model spec loadable with from_pretrained; write model.json."""

from pathlib import Path

from kmedqa.models import materialize
from kmedqa.workflow import run_script


def main(smk):
    out = Path(smk.output.model)
    materialize(out.parent.name, dict(smk.params.spec), out.parent)


run_script(snakemake, main)  # noqa: F821
