# Paired comparisons (bootstrap CI, permutation, exact McNemar, Holm) and power.


rule compare:
    input:
        scores=eval_set_scores,
    output:
        comparisons=f"{RESULTS}/stats/compare/{{eval_set}}.json",
    log:
        f"{RESULTS}/logs/compare/{{eval_set}}.log",
    conda:
        "../envs/eval.yaml"
    params:
        runs=RUNS,
        compare=config["compare"],
        seed=config["seed"],
    script:
        "../scripts/compare.py"


rule power:
    input:
        comparisons=expand(
            f"{RESULTS}/stats/compare/{{eval_set}}.json", eval_set=EVAL_SETS
        ),
    output:
        power=f"{RESULTS}/stats/power.json",
    log:
        f"{RESULTS}/logs/power.log",
    conda:
        "../envs/eval.yaml"
    script:
        "../scripts/power.py"


rule decontamination:
    input:
        train=[split_file(d, "train") for t in TRAIN_SET_NAMES for d in TRAIN_SETS[t]],
        evals=[eval_items_file(e) for e in EVAL_SETS],
    output:
        report=f"{RESULTS}/stats/decontamination.json",
        tables=tex_md("decontamination"),
    log:
        f"{RESULTS}/logs/decontamination.log",
    conda:
        "../envs/eval.yaml"
    params:
        train_sets={t: TRAIN_SETS[t] for t in TRAIN_SET_NAMES},
        eval_sets=list(EVAL_SETS),
    script:
        "../scripts/decontamination.py"


rule compare_seeds:
    input:
        scores=eval_set_scores,
    output:
        report=f"{RESULTS}/stats/seeds/{{eval_set}}.json",
    log:
        f"{RESULTS}/logs/compare_seeds/{{eval_set}}.log",
    conda:
        "../envs/eval.yaml"
    params:
        runs=RUNS,
        compare=config["compare"],
        seed=config["seed"],
    script:
        "../scripts/compare_seeds.py"
