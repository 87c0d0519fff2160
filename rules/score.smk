# Per-item metrics (ROUGE paper/ko, MCQ strict/lenient/format, language) and summaries.


rule score:
    input:
        qa=eval_items,
        generations=f"{RESULTS}/generations/{{model}}/{{variant}}/{{eval_set}}.jsonl",
    output:
        scores=f"{RESULTS}/scores/{{model}}/{{variant}}/{{eval_set}}.jsonl",
        summary=f"{RESULTS}/scores/{{model}}/{{variant}}/{{eval_set}}.summary.json",
    log:
        f"{RESULTS}/logs/score/{{model}}/{{variant}}/{{eval_set}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/score/{{model}}/{{variant}}/{{eval_set}}.tsv"
    conda:
        "../envs/eval.yaml"
    params:
        eval_set=lambda wc: wc.eval_set,
    script:
        "../scripts/score.py"
