"""paper/tables/fidelity: the study's reported settings beside the values this config uses."""

from kmedqa.paper.fidelity import check, fidelity_table, load_fidelity
from kmedqa.workflow import run_script


def main(smk):
    sections = []
    if smk.input.fidelity:
        fid = load_fidelity(smk.input.fidelity)
        sections.append((smk.params.name, fid["study"], check(smk.params.config, fid)))
    fidelity_table(sections).write(*smk.output.tables)


run_script(snakemake, main)  # noqa: F821
