# Training phase: the chosen config trained for the profile's final_iterations with early
# stopping; the best-on-validation weights become the model.


rule train_final:
    input:
        processed=rules.prepare.output.processed,
        split=SPLIT_FILE,
        choice=rules.search_select.output.best,
    output:
        model="models/{algo}/{setting}/model.pt",
        metrics="models/{algo}/{setting}/metrics.tsv",
        summary="models/{algo}/{setting}/summary.json",
        trajectory="models/{algo}/{setting}/trajectory.pt",
    params:
        run=final_run,
    log:
        "logs/train/{algo}/{setting}.log",
    benchmark:
        "benchmarks/runs/train/{algo}/{setting}.tsv"
    threads: 1
    resources:
        gpu=1,
    message:
        "Training {wildcards.algo} on {wildcards.setting}"
    shell:
        "OMP_NUM_THREADS={threads} metastress train --processed {input.processed} "
        "--split {input.split} --run {params.run:q} --choice {input.choice} "
        "--out models/{wildcards.algo}/{wildcards.setting} "
        "--work-root checkpoints/train/{wildcards.algo}/{wildcards.setting} > {log} 2>&1"


# The final models of one algorithm, all settings: what DVC versions per algorithm.
rule train_summary:
    input:
        lambda w: expand(rules.train_final.output.summary, algo=w.algo, setting=trained_settings()),
    output:
        summary="models/{algo}.json",
    log:
        "logs/train/{algo}.log",
    message:
        "Collecting the {wildcards.algo} training summaries"
    shell:
        "metastress collect --inputs {input} --root models/{wildcards.algo} "
        "--out {output.summary} > {log} 2>&1"
