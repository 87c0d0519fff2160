"""Forest plot, power figure, per-department accuracy, significance and 3.0%p tables."""

from kmedqa.io import read_json, read_jsonl, write_json
from kmedqa.paper.figures import domain_accuracy_figure, figure_stem, forest, power_curves
from kmedqa.paper.stats_tables import significance_table, three_pp_table
from kmedqa.stats.compare import domain_accuracy
from kmedqa.workflow import run_script


def main(smk):
    comparisons = [c for f in smk.input.compare for c in read_json(f)]
    power = read_json(smk.input.power)
    forest(comparisons, figure_stem(smk.output.forest))
    power_curves(power, figure_stem(smk.output.power_mde))
    scores = {
        (run, es): read_jsonl(f)
        for (run, es), f in zip(smk.params.runs, smk.input.scores, strict=True)
    }
    dom = domain_accuracy(scores, seed=smk.params.seed)
    write_json(smk.output.domains, dom)
    domain_accuracy_figure(dom, figure_stem(smk.output.domain_accuracy))
    # runs with several seeds: seed-aware rows (kmedqa.stats.seeds); none: today's tables
    seeded = [c for f in smk.input.seeds for c in read_json(f)["comparisons"]] or None
    significance_table(comparisons, seeded).write(*smk.output.significance)
    kormedmcqa = [
        c
        for c in seeded or []
        if c["eval_set"] in smk.params.kormedmcqa_eval_sets
        and c["metric"] == "mcq_strict"
        and c["run_a"].endswith(":base")
        and len(c["seeds_b"]) > 1
    ]
    three_pp_table(power["published_3pp"], kormedmcqa).write(*smk.output.three_pp)


run_script(snakemake, main)  # noqa: F821
