"""Per-department accuracy of the balanced recipes beside the study's (kmedqa.stats.ablation)."""

from kmedqa.io import read_jsonl, write_json
from kmedqa.paper.figures import domain_accuracy_figure, figure_stem
from kmedqa.stats.ablation import balance_domains
from kmedqa.workflow import run_script


def main(smk):
    scores: dict[str, list] = {}
    for (group, _), f in zip(smk.params.runs, smk.input.scores, strict=True):
        scores.setdefault(group, []).append(read_jsonl(f))
    rows = balance_domains(scores, smk.params.metric, smk.params.seed, smk.params.resamples)
    write_json(smk.output.rows, rows)
    domain_accuracy_figure(rows, figure_stem(smk.output.figure))


run_script(snakemake, main)  # noqa: F821
