# Evaluation phase: fixed meta-test tasks, identical for every algorithm of a setting.


# A model trained on {train} tested on {test} ({train} == {test} is the in-setting score;
# otherwise transfer across complexity).
rule evaluate:
    input:
        processed=rules.prepare.output.processed,
        split=SPLIT_FILE,
        model=lambda w: model(w.algo, w.train),
    output:
        result="results/eval/{algo}/{train}/{test}.json",
    params:
        evaluation=evaluation,
    log:
        "logs/eval/{algo}/{train}/{test}.log",
    benchmark:
        "benchmarks/runs/eval/{algo}/{train}/{test}.tsv"
    threads: 1
    message:
        "Evaluating {wildcards.algo} trained on {wildcards.train}, tested on {wildcards.test}"
    shell:
        "OMP_NUM_THREADS={threads} metastress evaluate --processed {input.processed} "
        "--split {input.split} --model {input.model} --evaluation {params.evaluation:q} "
        "--out {output.result} > {log} 2>&1"


# Figure 4a: the same models with a given number of adaptation steps.
rule evaluate_steps:
    input:
        processed=rules.prepare.output.processed,
        split=SPLIT_FILE,
        model=lambda w: model(w.algo, w.train),
    output:
        result="results/ablation/steps/{algo}/{train}/{test}/steps{steps}.json",
    params:
        evaluation=evaluation,
    log:
        "logs/ablation/steps/{algo}/{train}/{test}/steps{steps}.log",
    benchmark:
        "benchmarks/runs/ablation/steps/{algo}/{train}/{test}/steps{steps}.tsv"
    threads: 1
    message:
        "Evaluating {wildcards.algo} ({wildcards.train} -> {wildcards.test}) with "
        "{wildcards.steps} adaptation steps"
    shell:
        "OMP_NUM_THREADS={threads} metastress evaluate --processed {input.processed} "
        "--split {input.split} --model {input.model} --evaluation {params.evaluation:q} "
        "--steps {wildcards.steps} --out {output.result} > {log} 2>&1"


# Figure 4b: the initialization of one model adapted by another's inner optimizer, or by
# plain Adam ({optimizer_of} == adam).
rule evaluate_swap:
    input:
        processed=rules.prepare.output.processed,
        split=SPLIT_FILE,
        init=lambda w: model(w.init_of, w.test),
        optimizer=lambda w: [] if w.optimizer_of == "adam" else model(w.optimizer_of, w.test),
    output:
        result="results/ablation/swap/{test}/{optimizer_of}_adapts_{init_of}.json",
    params:
        evaluation=evaluation,
        how=swap_arguments,
    log:
        "logs/ablation/swap/{test}/{optimizer_of}_adapts_{init_of}.log",
    benchmark:
        "benchmarks/runs/ablation/swap/{test}/{optimizer_of}_adapts_{init_of}.tsv"
    threads: 1
    message:
        "Evaluating the {wildcards.init_of} initialization adapted by {wildcards.optimizer_of}"
    shell:
        "OMP_NUM_THREADS={threads} metastress evaluate --processed {input.processed} "
        "--split {input.split} --evaluation {params.evaluation:q} {params.how} "
        "--out {output.result} > {log} 2>&1"


# The metrics DVC compares across commits and experiments (`dvc exp show`, `dvc exp diff`):
# per algorithm a headline (mean test accuracy over Figure 2's settings), and per trained
# setting and transfer pair the test accuracy, its CI and the training's numbers; and the
# validation curves `dvc plots` draws.
rule summary:
    input:
        evaluations=in_setting(trained_settings()) + transfers(),
        trainings=expand(
            rules.train_final.output.summary, algo=ALGORITHMS, setting=trained_settings()
        ),
        training_logs=expand(
            rules.train_final.output.metrics, algo=ALGORITHMS, setting=trained_settings()
        ),
    output:
        headline="metrics/headline.json",
        by_setting="metrics/by_setting.json",
        curves="metrics/validation_curves.csv",
    params:
        models=expand("models/{algo}/{setting}", algo=ALGORITHMS, setting=trained_settings()),
        headline_settings=EXPERIMENTS["fig2"],
        folder=lambda w, output: Path(output.headline).parent,
    log:
        "logs/eval/summary.log",
    message:
        "Summarizing the metrics DVC compares"
    shell:
        "metastress summary --evaluations {input.evaluations} --models {params.models} "
        "--headline-settings {params.headline_settings} --out {params.folder} > {log} 2>&1"
