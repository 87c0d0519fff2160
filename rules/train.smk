# (Q)LoRA supervised fine-tuning, one adapter per model x train set.
# Checkpoints live in results/checkpoints/ (not a Snakemake output): a killed job resumes.


rule train:
    input:
        unpack(train_inputs),
    output:
        adapter=directory(f"{RESULTS}/train/{{model}}/{{train_set}}/adapter"),
        loss=f"{RESULTS}/train/{{model}}/{{train_set}}/loss.csv",
        summary=f"{RESULTS}/train/{{model}}/{{train_set}}/summary.json",
    log:
        f"{RESULTS}/logs/train/{{model}}/{{train_set}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{model}}/{{train_set}}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: local_cores()
    resources:
        gpu=1,
        mem_mb=16000,
    params:
        training=config.get("training"),
        formats=FORMATS,
        seed=config["seed"],
        checkpoint_dir=lambda wc: f"{RESULTS}/checkpoints/{wc.model}/{wc.train_set}",
    script:
        "../scripts/train.py"
