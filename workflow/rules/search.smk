# Search phase: per algorithm x setting, sampled configs trained briefly and scored on
# meta-validation; the best one is kept.


# One sampled configuration, trained for the profile's search_iterations. A diverged or
# out-of-memory trial is recorded as failed (scored worst), not a failed job.
rule search_trial:
    input:
        processed=rules.prepare.output.processed,
        split=SPLIT_FILE,
    output:
        record="results/search/{algo}/{setting}/trial{trial}.json",
    params:
        run=search_run,
        space=lambda w: as_json(search_space(config, w.algo)),
    log:
        "logs/search/{algo}/{setting}/trial{trial}.log",
    benchmark:
        "benchmarks/runs/search/{algo}/{setting}/trial{trial}.tsv"
    threads: 1
    resources:
        gpu=1,
    message:
        "Search {wildcards.algo} {wildcards.setting}: trial {wildcards.trial}"
    shell:
        "OMP_NUM_THREADS={threads} metastress search trial --processed {input.processed} "
        "--split {input.split} --run {params.run:q} --space {params.space:q} "
        "--trial {wildcards.trial} --out {output.record} "
        "--work-root checkpoints/search/{wildcards.algo}/{wildcards.setting}/trial{wildcards.trial} "
        "> {log} 2>&1"


# The best trial on meta-validation.
rule search_select:
    input:
        trials=lambda w: expand(
            rules.search_trial.output.record,
            algo=w.algo,
            setting=w.setting,
            trial=range(PROFILE["search_trials"]),
        ),
    output:
        best="results/search/{algo}/{setting}/best.json",
    log:
        "logs/search/{algo}/{setting}/select.log",
    message:
        "Choosing the best {wildcards.algo} config for {wildcards.setting}"
    shell:
        "metastress search select --trials {input.trials} --out {output.best} > {log} 2>&1"


# The chosen configs of one algorithm, all settings: what DVC versions per algorithm.
rule search_summary:
    input:
        lambda w: expand(rules.search_select.output.best, algo=w.algo, setting=trained_settings()),
    output:
        summary="results/search/{algo}.json",
    log:
        "logs/search/{algo}.log",
    message:
        "Collecting the chosen {wildcards.algo} configs"
    shell:
        "metastress collect --inputs {input} --root results/search/{wildcards.algo} "
        "--fields choice val_accuracy failed --out {output.summary} > {log} 2>&1"
