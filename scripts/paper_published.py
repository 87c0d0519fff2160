"""paper/tables/published_vs_reproduced: each published number beside kmedqa's, with a verdict."""

from kmedqa.io import read_jsonl, write_json
from kmedqa.paper.published import published_table, reproduce
from kmedqa.workflow import run_script


def main(smk):
    scores = {
        tuple(key): read_jsonl(f)
        for key, f in zip(smk.params.score_keys, smk.input.scores, strict=True)
    }
    cfg = smk.params.compare
    ci_method = cfg["ci_method"]
    rows = reproduce(
        smk.params.results,
        scores,
        runs={tuple(r) for r in smk.params.runs},
        resamples=cfg["resamples"],
        seed=smk.params.seed,
        ci_method=ci_method,
    )
    write_json(smk.output.rows, rows)
    table = published_table(
        rows,
        study=smk.params.study,
        illustrative=smk.params.illustrative,
        ci_method=ci_method,
        note=smk.params.note,
    )
    table.write(*smk.output.tables)


run_script(snakemake, main)  # noqa: F821
