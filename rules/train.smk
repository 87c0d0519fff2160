# (Q)LoRA supervised fine-tuning, one adapter per model x training (train set [+ recipe]
# [@ seed], see kmedqa.recipes).
# Checkpoints live in results/checkpoints/ (not a Snakemake output): a killed job resumes.


rule train:
    input:
        unpack(train_inputs),
    output:
        adapter=directory(f"{RESULTS}/train/{{model}}/{{training}}/adapter"),
        loss=f"{RESULTS}/train/{{model}}/{{training}}/loss.csv",
        summary=f"{RESULTS}/train/{{model}}/{{training}}/summary.json",
    log:
        f"{RESULTS}/logs/train/{{model}}/{{training}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{model}}/{{training}}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: local_cores()
    resources:
        gpu=1,
        mem_mb=16000,
    params:
        training=lambda wc: training_settings(wc.training),
        formats=FORMATS,
        seed=lambda wc: training_seed(wc.training),
        checkpoint_dir=lambda wc: f"{RESULTS}/checkpoints/{wc.model}/{wc.training}",
    script:
        "../scripts/train.py"


# Continued pre-training (train_sets.<name>.cpt): LoRA as a causal LM on a corpus, merged
# into the base weights; the train sets that name the corpus fine-tune on the merged model.
wildcard_constraints:
    corpus="[A-Za-z0-9_]+",


rule train_cpt:
    input:
        unpack(cpt_inputs),
    output:
        adapter=directory(f"{RESULTS}/cpt/{{model}}/{{corpus}}/adapter"),
        loss=f"{RESULTS}/cpt/{{model}}/{{corpus}}/loss.csv",
        summary=f"{RESULTS}/cpt/{{model}}/{{corpus}}/summary.json",
    log:
        f"{RESULTS}/logs/train_cpt/{{model}}/{{corpus}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_cpt/{{model}}/{{corpus}}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: local_cores()
    resources:
        gpu=1,
        mem_mb=16000,
    params:
        corpus_path=lambda wc: CPT_CORPORA[wc.corpus]["path"],
        corpus_spec=lambda wc: CPT_CORPORA[wc.corpus],
        training=config.get("training"),
        cpt=config.get("cpt"),
        seed=config["seed"],
        checkpoint_dir=lambda wc: f"{RESULTS}/checkpoints/{wc.model}/cpt-{wc.corpus}",
    script:
        "../scripts/train_cpt.py"


rule merge_cpt:
    input:
        model=f"{RESULTS}/models/{{model}}/model.json",
        adapter=f"{RESULTS}/cpt/{{model}}/{{corpus}}/adapter",
    output:
        model=f"{RESULTS}/cpt/{{model}}/{{corpus}}/merged/model.json",
        weights=directory(f"{RESULTS}/cpt/{{model}}/{{corpus}}/merged/hf"),
    log:
        f"{RESULTS}/logs/merge_cpt/{{model}}/{{corpus}}.log",
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=32000,
    params:
        corpus=lambda wc: wc.corpus,
    script:
        "../scripts/merge_cpt.py"
