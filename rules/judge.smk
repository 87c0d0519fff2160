# LLM-as-judge on the answers of every run (cached, resumable; "not run" is explicit).


rule judge:
    input:
        unpack(judge_inputs),
    output:
        rows=f"{RESULTS}/judge/{{eval_set}}.jsonl",
        summary=f"{RESULTS}/judge/{{eval_set}}.summary.json",
    log:
        f"{RESULTS}/logs/judge/{{eval_set}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/judge/{{eval_set}}.tsv"
    conda:
        "../envs/eval.yaml"
    params:
        judge=JUDGE_CONFIG,
        runs=[run_name(m, v) for m, v in RUNS],
        cache_dir=f"{RESULTS}/cache/judge",
    script:
        "../scripts/judge.py"


rule paper_judge:
    input:
        rows=expand(f"{RESULTS}/judge/{{e}}.jsonl", e=JUDGE_EVAL_SETS),
        summaries=expand(f"{RESULTS}/judge/{{e}}.summary.json", e=JUDGE_EVAL_SETS),
    output:
        judge=tex_md("judge"),
    log:
        f"{RESULTS}/logs/paper/judge.log",
    conda:
        "../envs/paper.yaml"
    params:
        eval_sets=JUDGE_EVAL_SETS,
        pairs=[
            (run_name(m, a), run_name(m, b))
            for m, variants in PLAN.runs.items()
            for a, b in comparison_pairs(variants)
            if a == "base" and b.startswith("ft-")
        ],
        seed=config["seed"],
    script:
        "../scripts/paper_judge.py"
