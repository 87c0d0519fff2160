"""Table 5: judge scores of base vs fine-tuned with paired bootstrap intervals (or "not run")."""

from kmedqa.io import atomic_write_text, read_json, read_jsonl
from kmedqa.judge.table import table5
from kmedqa.workflow import run_script


def main(smk):
    md, tex = [], []
    for es, rows_f, sum_f in zip(
        smk.params.eval_sets, smk.input.rows, smk.input.summaries, strict=True
    ):
        rows, summary = read_jsonl(rows_f), read_json(sum_f)
        if not rows and summary.get("status") != "not_run":
            md.append(
                f"### {es}\n\nNo item of the judged tasks ({summary.get('sample')}) in this eval set.\n"
            )
            continue
        for base, ft in smk.params.pairs:
            t = table5(
                rows, base, ft, summary=summary, seed=smk.params.seed, label=f"tab:judge-{es}"
            )
            md.append(f"### {es}: {ft} vs {base}\n\n{t['markdown']}")
            tex.append(t["latex"])
    if not smk.params.pairs:
        md.append("No base/fine-tuned pair in this config: Table 5 has nothing to compare.\n")
    tex_path, md_path = smk.output.judge
    atomic_write_text(tex_path, "\n".join(tex) or "% no base/fine-tuned pair to judge\n")
    atomic_write_text(md_path, "\n".join(md))


run_script(snakemake, main)  # noqa: F821
