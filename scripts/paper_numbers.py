"""paper/numbers.tex: one macro per number the text uses."""

from kmedqa.io import read_json
from kmedqa.paper.numbers import collect, write_numbers
from kmedqa.workflow import run_script


def main(smk):
    manifests = {
        n: read_json(f) for n, f in zip(smk.params.datasets, smk.input.manifests, strict=True)
    }
    numbers = collect(
        study=smk.params.study,
        datasets=manifests,
        summaries=read_json(smk.input.summary),
        comparisons=[c for f in smk.input.compare for c in read_json(f)],
        power=read_json(smk.input.power),
        trainings={
            n: read_json(f) for n, f in zip(smk.params.trainings, smk.input.trainings, strict=True)
        },
        kormedmcqa_eval_sets=smk.params.kormedmcqa_eval_sets,
    )
    write_numbers(smk.output.numbers, numbers)


run_script(snakemake, main)  # noqa: F821
