# Paired comparisons (bootstrap CI, permutation, exact McNemar, Holm) and power.


rule compare:
    input:
        eval_set_scores,
    output:
        f"{RESULTS}/stats/compare/{{eval_set}}.json",
    log:
        f"{RESULTS}/logs/compare/{{eval_set}}.log",
    conda:
        "../envs/eval.yaml"
    params:
        runs=RUNS,
        compare=config.get("compare", {}),
        seed=config["seed"],
    script:
        "../scripts/compare.py"


rule power:
    input:
        expand(f"{RESULTS}/stats/compare/{{eval_set}}.json", eval_set=EVAL_SETS),
    output:
        f"{RESULTS}/stats/power.json",
    log:
        f"{RESULTS}/logs/power.log",
    conda:
        "../envs/eval.yaml"
    script:
        "../scripts/power.py"
