"""Score one run on one eval set (the same code as `kmedqa score`)."""

from kmedqa.io import read_jsonl, write_json, write_jsonl
from kmedqa.items import read_items
from kmedqa.scoring import score_items, summarize
from kmedqa.workflow import run_script


def main(smk):
    semantic = smk.input.get("semantic")
    rows = score_items(
        read_items(smk.input.qa),
        read_jsonl(smk.input.generations),
        eval_set=smk.params.eval_set,
        eval_format=smk.params.eval_format,
        file_items=smk.input.qa,
        file_gens=smk.input.generations,
        semantic=read_jsonl(semantic) if semantic else None,
        file_semantic=semantic,
    )
    write_jsonl(smk.output.scores, rows)
    write_json(smk.output.summary, summarize(rows))


run_script(snakemake, main)  # noqa: F821
