# Training phase: the chosen config trained for the profile's final_iterations with early
# stopping, once per training seed; the best-on-validation weights become the model. Figure 1's
# pair is trained apart, with hyperparameters of its own.


rule train_final:
    input:
        processed=rules.prepare.output.processed,
        split=SPLIT_FILE,
        choice=rules.search_select.output.best,
    output:
        model=paths.model_file("{algo}", "{setting}", "{seed}"),
        metrics=paths.run_dir("{algo}", "{setting}", "{seed}") + "/metrics.tsv",
        summary=paths.run_dir("{algo}", "{setting}", "{seed}") + "/summary.json",
    params:
        run=final_run,
        out=lambda w, output: Path(output.model).parent,
        work_root=lambda w: paths.train_work_root(w.algo, w.setting),
    log:
        "logs/train/{algo}/{setting}/seed{seed}.log",
    benchmark:
        "benchmarks/runs/train/{algo}/{setting}/seed{seed}.tsv"
    threads: 1
    resources:
        gpu=1,
    message:
        "Training {wildcards.algo} on {wildcards.setting} (seed {wildcards.seed})"
    shell:
        "OMP_NUM_THREADS={threads} metastress train --processed {input.processed} "
        "--split {input.split} --run {params.run:q} --choice {input.choice} "
        "--out {params.out} --work-root {params.work_root} > {log} 2>&1"


# Figure 1: each algorithm of the pair trained with experiments.fig1's hyperparameters,
# protocol.seed (one initialization, one sequence of episodes) and the profile's
# fig1_iterations, recording the learned initialization before the first and after every
# meta-update (MetaLSTM: every task). The recording calls back on the host after every
# optimizer step, so this job runs eagerly. It needs no search.
rule train_fig1:
    input:
        processed=rules.prepare.output.processed,
        split=SPLIT_FILE,
    output:
        trajectory=paths.trajectory_file("{algo}", "{setting}"),
        model=paths.trajectory_dir("{algo}", "{setting}") + "/model.pt",
        metrics=paths.trajectory_dir("{algo}", "{setting}") + "/metrics.tsv",
        summary=paths.trajectory_dir("{algo}", "{setting}") + "/summary.json",
    params:
        run=fig1_run,
        out=lambda w, output: Path(output.model).parent,
        work_root=lambda w: paths.trajectory_work_root(w.algo, w.setting),
    log:
        "logs/fig1/{algo}/{setting}.log",
    benchmark:
        "benchmarks/runs/fig1/{algo}/{setting}.tsv"
    wildcard_constraints:
        algo="|".join(EXPERIMENTS["fig1"]["algorithms"]),
        setting=EXPERIMENTS["fig1"]["setting"],
    threads: 1
    resources:
        gpu=1,
    message:
        "Training {wildcards.algo} on {wildcards.setting} for Figure 1, every meta-update recorded"
    shell:
        "OMP_NUM_THREADS={threads} metastress train --processed {input.processed} "
        "--split {input.split} --run {params.run:q} --out {params.out} "
        "--work-root {params.work_root} > {log} 2>&1"


# The final models of one algorithm, all settings and seeds: what DVC versions per algorithm.
rule train_summary:
    input:
        lambda w: expand(
            rules.train_final.output.summary, algo=w.algo, setting=trained_settings(), seed=SEEDS
        ),
    output:
        summary="models/{algo}.json",
    log:
        "logs/train/{algo}.log",
    message:
        "Collecting the {wildcards.algo} training summaries"
    shell:
        "metastress collect --inputs {input} --root models/{wildcards.algo} "
        "--out {output.summary} > {log} 2>&1"
