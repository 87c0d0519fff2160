# Everything -> paper/: figures (PDF + PNG), tables (LaTeX + Markdown), numbers.tex, PDF.


rule environment:
    output:
        env=f"{RESULTS}/env.json",
    log:
        f"{RESULTS}/logs/environment.log",
    conda:
        "../envs/torch.yaml"
    params:
        repo=workflow.basedir,
    script:
        "../scripts/environment.py"


rule paper_data:
    input:
        qa=[items_file(d) for d in PAPER_DATASETS],
        manifests=expand(f"{RESULTS}/data/{{d}}/manifest.json", d=PAPER_DATASETS),
    output:
        data_distribution=both(f"{FIG}/data_distribution"),
        data=tex_md("data"),
    log:
        f"{RESULTS}/logs/paper/data.log",
    conda:
        "../envs/paper.yaml"
    params:
        names=PAPER_DATASETS,
    script:
        "../scripts/paper_data.py"


rule paper_data_filters:
    input:
        reports=[f"{RESULTS}/data/{d}/filters.json" for d in FILTERED],
    output:
        data_filters=tex_md("data_filters"),
    log:
        f"{RESULTS}/logs/paper/data_filters.log",
    conda:
        "../envs/paper.yaml"
    script:
        "../scripts/paper_data_filters.py"


rule paper_training:
    input:
        loss=[f"{RESULTS}/cpt/{m}/{c}/loss.csv" for m, c in CPT_STAGES]
        + [f"{RESULTS}/train/{m}/{t}/loss.csv" for m, t in TRAININGS],
        summaries=[f"{RESULTS}/cpt/{m}/{c}/summary.json" for m, c in CPT_STAGES]
        + [f"{RESULTS}/train/{m}/{t}/summary.json" for m, t in TRAININGS],
        env=f"{RESULTS}/env.json",
        generations=[generation_summary(m, v, e) for m, v in RUNS for e in EVAL_SETS],
    output:
        loss_curves=both(f"{FIG}/loss_curves"),
        lora=tex_md("lora"),
        training=tex_md("training"),
        environment=tex_md("environment"),
    log:
        f"{RESULTS}/logs/paper/training.log",
    conda:
        "../envs/paper.yaml"
    params:
        names=[f"{m}:cpt-{c}" for m, c in CPT_STAGES]
        + [f"{m}:ft-{t}" for m, t in TRAININGS],
    script:
        "../scripts/paper_training.py"


rule paper_results:
    input:
        summaries=all_summary_files(),
        scores=all_score_files(),
        qa=[eval_items_file(e) for e in EVAL_SETS],
        semantic=all_semantic_meta(),
    output:
        results_overall=both(f"{FIG}/results_overall"),
        results_by_type=both(f"{FIG}/results_by_type"),
        results_by_domain=both(f"{FIG}/results_by_domain"),
        main_results=tex_md("main_results"),
        mcq_format=tex_md("mcq_format"),
        code_switching=tex_md("code_switching"),
        clinical_notes=tex_md("clinical_notes"),
        summary=f"{RESULTS}/scores/summary.json",
        rougeL_by_domain=both(f"{FIG}/rougeL_by_domain"),
    log:
        f"{RESULTS}/logs/paper/results.log",
    conda:
        "../envs/paper.yaml"
    params:
        runs=[(run_name(m, v), e) for m, v in RUNS for e in EVAL_SETS],
    script:
        "../scripts/paper_results.py"


rule paper_stats:
    input:
        compare=expand(f"{RESULTS}/stats/compare/{{e}}.json", e=EVAL_SETS),
        power=f"{RESULTS}/stats/power.json",
        scores=all_score_files(),
        seeds=expand(f"{RESULTS}/stats/seeds/{{e}}.json", e=EVAL_SETS) if SEEDED else [],
    output:
        forest=both(f"{FIG}/forest"),
        power_mde=both(f"{FIG}/power_mde"),
        domain_accuracy=both(f"{FIG}/domain_accuracy"),
        significance=tex_md("significance"),
        three_pp=tex_md("three_pp"),
        domains=f"{RESULTS}/stats/domain_accuracy.json",
    log:
        f"{RESULTS}/logs/paper/stats.log",
    conda:
        "../envs/paper.yaml"
    params:
        runs=[(run_name(m, v), e) for m, v in RUNS for e in EVAL_SETS],
        seed=config["seed"],
        kormedmcqa_eval_sets=KORMEDMCQA_EVAL_SETS,
    script:
        "../scripts/paper_stats.py"


rule paper_ablation:
    input:
        seeds=expand(f"{RESULTS}/stats/seeds/{{e}}.json", e=EVAL_SETS),
    output:
        table=tex_md("ablation_{grid}", kind="ablation"),
        figure=both(f"{FIG}/ablation_{{grid}}", kind="ablation"),
        rows=f"{RESULTS}/stats/ablation/{{grid}}.json",
    log:
        f"{RESULTS}/logs/paper/ablation_{{grid}}.log",
    wildcard_constraints:
        grid="|".join(re.escape(g) for g in PLAN.grids) or "(?!)",
    conda:
        "../envs/paper.yaml"
    params:
        members=lambda wc: PLAN.grids[wc.grid],
        uses=lambda wc: GRID_USES[wc.grid],
    script:
        "../scripts/paper_ablation.py"


rule paper_balance:
    input:
        scores=(
            [
                score_file(g.split(":")[0], v, balance_eval_set())
                for g, v in balance_runs()
            ]
            if BALANCED
            else []
        ),
    output:
        figure=both(f"{FIG}/ablation_balance"),
        rows=f"{RESULTS}/stats/ablation/balance.json",
    log:
        f"{RESULTS}/logs/paper/ablation_balance.log",
    conda:
        "../envs/paper.yaml"
    params:
        runs=balance_runs() if BALANCED else [],
        metric="mcq_strict",
        seed=config["seed"],
        resamples=config["compare"]["resamples"],
    script:
        "../scripts/paper_balance.py"


rule paper_numbers:
    input:
        manifests=expand(f"{RESULTS}/data/{{d}}/manifest.json", d=PAPER_DATASETS),
        summary=f"{RESULTS}/scores/summary.json",
        compare=expand(f"{RESULTS}/stats/compare/{{e}}.json", e=EVAL_SETS),
        power=f"{RESULTS}/stats/power.json",
        trainings=[f"{RESULTS}/train/{m}/{t}/summary.json" for m, t in TRAININGS],
    output:
        numbers=f"{PAPER}/numbers.tex",
    log:
        f"{RESULTS}/logs/paper/numbers.log",
    conda:
        "../envs/paper.yaml"
    params:
        study=config["study"],
        datasets=PAPER_DATASETS,
        trainings=[f"{m}:ft-{t}" for m, t in TRAININGS],
        kormedmcqa_eval_sets=KORMEDMCQA_EVAL_SETS,
    script:
        "../scripts/paper_numbers.py"


rule paper_pdf:
    input:
        tex=str(Path(workflow.basedir) / "paper" / "main.tex"),
        numbers=f"{PAPER}/numbers.tex",
        figures=both(f"{FIG}/data_distribution")
        + both(f"{FIG}/forest")
        + both(f"{FIG}/power_mde"),
        tables=tex_md("main_results") + tex_md("significance") + tex_md("three_pp"),
        fidelity=tex_md("published_vs_reproduced") + tex_md("fidelity"),
        training=tex_md("training") if TRAININGS else [],
        filters=tex_md("data_filters") if FILTERED else [],
    output:
        status=f"{RESULTS}/paper/latex_status.txt",
    log:
        f"{RESULTS}/logs/paper/latex.log",
    conda:
        "../envs/paper.yaml"
    script:
        "../scripts/paper_pdf.py"


# Published numbers beside kmedqa's, and the study's settings beside the config's.
from kmedqa.paper.fidelity import load_fidelity
from kmedqa.paper.published import check_published, needed_scores

PUBLISHED = config.get("published", {})
PUBLISHED_RESULTS = check_published(
    config
)  # an unknown eval set stops here, in one line
PUBLISHED_SCORES = needed_scores(config)
FIDELITY_FILE = (
    str(Path(workflow.basedir) / config["fidelity"]["file"])
    if config.get("fidelity")
    else None
)
if FIDELITY_FILE:
    load_fidelity(FIDELITY_FILE)  # a missing or malformed list stops here


rule paper_published:
    input:
        scores=[score_file(m, v, e) for m, v, e in PUBLISHED_SCORES],
    output:
        tables=tex_md("published_vs_reproduced"),
        rows=f"{RESULTS}/paper/published_vs_reproduced.json",
    log:
        f"{RESULTS}/logs/paper/published.log",
    conda:
        "../envs/paper.yaml"
    params:
        score_keys=PUBLISHED_SCORES,
        results=PUBLISHED_RESULTS,
        runs=RUNS,
        study=PUBLISHED.get("study", ""),
        illustrative=PUBLISHED.get("illustrative", False),
        note=PUBLISHED.get("note", ""),
        compare=config["compare"],
        seed=config["seed"],
    script:
        "../scripts/paper_published.py"


rule paper_fidelity:
    input:
        fidelity=FIDELITY_FILE or [],
        formats=str(
            Path(workflow.basedir) / "src" / "kmedqa" / "prompts" / "tasks.yaml"
        ),
    output:
        tables=tex_md("fidelity"),
    log:
        f"{RESULTS}/logs/paper/fidelity.log",
    conda:
        "../envs/paper.yaml"
    params:
        config=config,
        name=config["study"],
    script:
        "../scripts/paper_fidelity.py"
