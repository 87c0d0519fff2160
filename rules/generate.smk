# Every run answers every item of every eval set: greedy, batched, resumable.


rule generate:
    input:
        unpack(generate_inputs),
    output:
        generations=f"{RESULTS}/generations/{{model}}/{{variant}}/{{eval_set}}.jsonl",
        summary=f"{RESULTS}/generations/{{model}}/{{variant}}/{{eval_set}}.summary.json",
    log:
        f"{RESULTS}/logs/generate/{{model}}/{{variant}}/{{eval_set}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/generate/{{model}}/{{variant}}/{{eval_set}}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: workflow.cores
    resources:
        gpu=1,
        mem_mb=16000,
    params:
        run=lambda wc: run_name(wc.model, wc.variant),
        formats=FORMATS,
        generation=config["evaluation"]["generation"],
        icl=config["evaluation"]["icl"],
        eval_format=eval_format,
        base_quantization=base_quantization,
        cache_dir=f"{RESULTS}/cache/generate",
    script:
        "../scripts/generate.py"
