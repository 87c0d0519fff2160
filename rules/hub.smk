# A Hub-ready folder per trained adapter: the adapter files + a model card (README.md) with
# the run's results on every eval set. Push it with `huggingface-cli upload`.


rule model_card:
    input:
        adapter=f"{RESULTS}/train/{{model}}/{{training}}/adapter",
        summary=f"{RESULTS}/train/{{model}}/{{training}}/summary.json",
        model=f"{RESULTS}/models/{{model}}/model.json",
        scores=lambda wc: [
            score_file(wc.model, f"ft-{wc.training}", e) for e in EVAL_SETS
        ],
    output:
        hub=directory(f"{RESULTS}/hub/{{model}}/{{training}}"),
    log:
        f"{RESULTS}/logs/model_card/{{model}}/{{training}}.log",
    conda:
        "../envs/eval.yaml"
    params:
        eval_sets=list(EVAL_SETS),
        datasets=lambda wc: TRAIN_SETS[train_set_of(wc.training)],
        hub=config.get("hub", {}),
        study=config.get("study", ""),
        resamples=config.get("compare", {}).get("resamples", 10000),
        seed=config["seed"],
        configfile=(
            [str(f) for f in workflow.overwrite_configfiles]
            if workflow.overwrite_configfiles
            else None
        ),
    script:
        "../scripts/model_card.py"
