"""Fig. 3 (runs by metric, type, department) and the results tables."""

from rouge_score import tokenize

from kmedqa.io import read_json, read_jsonl, write_json
from kmedqa.items import read_items
from kmedqa.paper.figures import figure_stem, grouped_bars
from kmedqa.paper.results_tables import (
    clinical_notes_table,
    code_switching_table,
    main_results_table,
    mcq_table,
)
from kmedqa.workflow import run_script

FIG3C = "ROUGE-L by department: rouge-score default tokenizer (paper) and Korean morphemes (ko)"


def rouge_note(items):
    """Why the two ROUGE variants differ, measured on these references."""
    refs = [i["answer"] for i in items]
    empty = sum(1 for r in refs if not tokenize.tokenize(r, None))
    only_digits = sum(
        1 for r in refs if (t := tokenize.tokenize(r, None)) and all(x.isdigit() for x in t)
    )
    return (
        "ROUGE (paper) uses rouge-score's default tokenizer (the essential-medical study does not "
        "name its tokenizer; its published numbers are consistent with this one, which is evidence, "
        f"not a statement of the study). It keeps only [a-z0-9]: of the {len(refs):,} "
        f"reference answers, {empty:,} ({empty / max(1, len(refs)):.0%}) have no token left and score 0 "
        f"whatever the answer, and {only_digits:,} keep only digits (an MCQ option number), so identical Korean "
        "answers can score 0 or 1 by accident. ROUGE (ko) tokenizes Korean into morphemes (kiwipiepy)."
    )


def main(smk):
    summaries = [row for f in smk.input.summaries for row in read_json(f)]
    write_json(smk.output.summary, summaries)

    def bars(files, metrics, by, title):  # Fig. 3: grouped by ``by`` (None: overall)
        stem = figure_stem(files)
        grouped_bars(summaries, metrics, stem, group=by or "overall", label_col=by, title=title)

    overall = ["mcq_strict", "mcq_lenient", "format_ok", "rougeL_paper", "rougeL_ko"]
    bars(smk.output.results_overall, overall, None, "Runs by metric")
    by_type = ["mcq_strict", "rougeL_ko", "rougeL_paper"]
    bars(smk.output.results_by_type, by_type, "q_type", "By question type")
    bars(smk.output.results_by_domain, ["mcq_strict", "rougeL_ko"], "domain", "By department")
    # the essential-medical study's Fig. 3(c): ROUGE-L by department with rouge-score's
    # default tokenizer, beside ROUGE-L on Korean morphemes
    bars(smk.output.rougeL_by_domain, ["rougeL_paper", "rougeL_ko"], "domain", FIG3C)
    items = [it for f in sorted(set(smk.input.qa)) for it in read_items(f)]
    main_results_table(summaries, rouge_note(items)).write(*smk.output.main_results)
    mcq_table(summaries).write(*smk.output.mcq_format)
    scores = {}
    for (run, es), f in zip(smk.params.runs, smk.input.scores, strict=True):
        scores[(es, run)] = read_jsonl(f)
    code_switching_table(scores).write(*smk.output.code_switching)
    scorers = {}
    for f in smk.input.semantic:  # how BERTScore/BLEURT were run (the same for every run)
        meta = read_json(f)
        for name in ("bertscore", "bleurt"):
            if meta.get(name) and (meta[name].get("hash") or name == "bleurt"):
                scorers.setdefault(name, meta[name])
    clinical_notes_table(summaries, scorers).write(*smk.output.clinical_notes)


run_script(snakemake, main)  # noqa: F821
