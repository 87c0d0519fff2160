"""One grid's ablation table and figure (kmedqa.stats.ablation)."""

from kmedqa.io import read_json, write_json
from kmedqa.paper.figures import figure_stem
from kmedqa.stats.ablation import ablation_figure, ablation_table, grid_rows
from kmedqa.workflow import run_script


def main(smk):
    grid = smk.wildcards.grid
    reports = [read_json(f) for f in smk.input.seeds]
    rows = grid_rows(grid, smk.params.members, [tuple(u) for u in smk.params.uses], reports)
    write_json(smk.output.rows, rows)
    ablation_table(f"ablation_{grid}", grid, rows).write(*smk.output.table)
    ablation_figure(rows, figure_stem(smk.output.figure))


run_script(snakemake, main)  # noqa: F821
