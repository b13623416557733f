# Search phase: per algorithm x setting, sampled configs trained rung by rung and scored on
# meta-validation; the best of the last rung is kept. Random search is one rung; successive
# halving (profiles' search_method) extends the best 1/search_eta of each rung's trials from
# their checkpoints in the next (src/metastress/halving.py). How many trials each rung holds is
# fixed by params.yaml, so the rungs are ordinary rules; which trials survive is read from the
# previous rung's records when the job runs.


# A part of a rung: up to search_trials_per_job trials trained one after another in one
# process (one GPU), each to the rung's budget. A diverged or out-of-memory trial is recorded as
# failed (scored worst), not a failed job.
rule search_rung:
    input:
        processed=rules.prepare.output.processed,
        split=SPLIT_FILE,
        previous=previous_rung,
    output:
        record="results/search/{algo}/{setting}/rung{rung}/part{part}.json",
    params:
        run=search_run,
        space=lambda w: as_json(search_space(config, w.algo)),
        plan=as_json(dataclasses.asdict(PLAN)),
        work_root=lambda w: paths.search_work_root(w.algo, w.setting),
    log:
        "logs/search/{algo}/{setting}/rung{rung}/part{part}.log",
    benchmark:
        "benchmarks/runs/search/{algo}/{setting}/rung{rung}/part{part}.tsv"
    threads: 1
    resources:
        gpu=1,
        trials=lambda w: PLAN.part_size(int(w.rung), int(w.part)),  # what one GPU takes
        runtime=search_minutes,
    message:
        "Search {wildcards.algo} {wildcards.setting}: rung {wildcards.rung}, part {wildcards.part}"
    shell:
        "OMP_NUM_THREADS={threads} metastress search rung --processed {input.processed} "
        "--split {input.split} --run {params.run:q} --space {params.space:q} "
        "--plan {params.plan:q} --rung {wildcards.rung} --part {wildcards.part} "
        "--previous {input.previous} --out {output.record} --work-root {params.work_root} "
        "> {log} 2>&1"


# The best trial of the last rung on meta-validation.
rule search_select:
    input:
        parts=lambda w: search_parts(w.algo, w.setting),
    output:
        best="results/search/{algo}/{setting}/best.json",
    log:
        "logs/search/{algo}/{setting}/select.log",
    message:
        "Choosing the best {wildcards.algo} config for {wildcards.setting}"
    shell:
        "metastress search select --parts {input.parts} --out {output.best} > {log} 2>&1"


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
