# Raw data -> normalized items -> train/val/test splits (+ manifest).


rule demo_data:
    output:
        aihub=directory(f"{RESULTS}/raw/demo/aihub71875"),
        kormedmcqa=f"{RESULTS}/raw/demo/kormedmcqa/doctor.csv",
    log:
        f"{RESULTS}/logs/demo_data.log",
    benchmark:
        f"{RESULTS}/benchmarks/demo_data.tsv"
    conda:
        "../envs/data.yaml"
    params:
        seed=config["seed"],
    script:
        "../scripts/demo_data.py"


rule prepare:
    input:
        raw=raw_input,
    output:
        qa=f"{RESULTS}/data/{{dataset}}/items.jsonl",
        report=f"{RESULTS}/data/{{dataset}}/prepare.json",
    log:
        f"{RESULTS}/logs/prepare/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare/{{dataset}}.tsv"
    conda:
        "../envs/data.yaml"
    params:
        spec=prepare_spec,
        name=lambda wc: wc.dataset,
    script:
        "../scripts/prepare.py"


rule filter_items:
    input:
        qa=f"{RESULTS}/data/{{dataset}}/items.jsonl",
        patterns=lambda wc: pattern_files(DATASETS[wc.dataset].get("filters")),
    output:
        qa=f"{RESULTS}/data/{{dataset}}/items.filtered.jsonl",
        report=f"{RESULTS}/data/{{dataset}}/filters.json",
    log:
        f"{RESULTS}/logs/filter/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/filter/{{dataset}}.tsv"
    conda:
        "../envs/data.yaml"
    params:
        filters=lambda wc: DATASETS[wc.dataset]["filters"],
        name=lambda wc: wc.dataset,
    script:
        "../scripts/filter_items.py"


rule split:
    input:
        qa=lambda wc: items_file(wc.dataset),
    output:
        train=f"{RESULTS}/data/{{dataset}}/train.jsonl",
        val=f"{RESULTS}/data/{{dataset}}/val.jsonl",
        test=f"{RESULTS}/data/{{dataset}}/test.jsonl",
        manifest=f"{RESULTS}/data/{{dataset}}/manifest.json",
    log:
        f"{RESULTS}/logs/split/{{dataset}}.log",
    conda:
        "../envs/data.yaml"
    params:
        split=lambda wc: DATASETS[wc.dataset]["split"],
        expect=lambda wc: DATASETS[wc.dataset].get("expect"),
        seed=config["seed"],
    script:
        "../scripts/split.py"


rule sample:
    input:
        test=f"{RESULTS}/data/{{dataset}}/test.jsonl",
    output:
        sample=f"{RESULTS}/data/{{dataset}}/sample.jsonl",
    log:
        f"{RESULTS}/logs/sample/{{dataset}}.log",
    conda:
        "../envs/data.yaml"
    params:
        sample=lambda wc: DATASETS[wc.dataset].get("sample"),
    script:
        "../scripts/sample.py"
