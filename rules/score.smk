# Per-item metrics (ROUGE paper/ko, MCQ strict/lenient/format, language, sections) and
# summaries; BERTScore/BLEURT of section summaries when evaluation.scoring names models.


rule semantic_score:
    input:
        qa=eval_items,
        generations=f"{RESULTS}/generations/{{model}}/{{variant}}/{{eval_set}}.jsonl",
    output:
        scores=f"{RESULTS}/scores/{{model}}/{{variant}}/{{eval_set}}.semantic.jsonl",
        meta=f"{RESULTS}/scores/{{model}}/{{variant}}/{{eval_set}}.semantic.json",
    log:
        f"{RESULTS}/logs/semantic_score/{{model}}/{{variant}}/{{eval_set}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/semantic_score/{{model}}/{{variant}}/{{eval_set}}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: local_cores()
    resources:
        gpu=1,
    params:
        scoring=SCORING,
    script:
        "../scripts/semantic_score.py"


rule score:
    input:
        unpack(score_inputs),
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
        eval_format=eval_format,
    script:
        "../scripts/score.py"
