# Model spec -> something from_pretrained can load (hub id, local dir, or a de-quantized GGUF).


rule materialize:
    output:
        model=f"{RESULTS}/models/{{model}}/model.json",
    log:
        f"{RESULTS}/logs/materialize/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/materialize/{{model}}.tsv"
    # first among ready jobs: a hub id that is neither cached nor reachable stops the run
    # before the data work
    priority: 50
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=8000,
    params:
        spec=lambda wc: config["models"][wc.model],
    script:
        "../scripts/materialize.py"
