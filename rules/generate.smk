# Every run answers every item of every eval set: greedy, batched, resumable. A hosted
# model (source: api) is asked through its provider's SDK instead: no GPU, one thread.


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
    threads: lambda wc: 1 if is_api(wc) else local_cores()
    resources:
        gpu=lambda wc: 0 if is_api(wc) else 1,
        mem_mb=lambda wc: 1000 if is_api(wc) else 16000,
    params:
        run=lambda wc: run_name(wc.model, wc.variant),
        formats=FORMATS,
        generation=config["evaluation"]["generation"],
        icl=config["evaluation"]["icl"],
        eval_format=eval_format,
        base_quantization=base_quantization,
        cache_dir=f"{RESULTS}/cache/generate",
        spec=lambda wc: config["models"][wc.model],
        may_leave_machine=lambda wc: may_leave_machine(config, wc.eval_set, wc.variant),
    script:
        "../scripts/generate.py"
