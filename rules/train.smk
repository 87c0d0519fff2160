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
