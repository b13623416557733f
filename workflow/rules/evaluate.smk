# Evaluation phase: fixed meta-test tasks, identical for every algorithm and seed of a setting.


# A model trained on {train} with seed {seed} tested on {test} ({train} == {test} is the
# in-setting score; otherwise transfer across complexity).
rule evaluate:
    input:
        processed=rules.prepare.output.processed,
        split=SPLIT_FILE,
        model=lambda w: model(w.algo, w.train, w.seed),
    output:
        result=paths.evaluation_file("{algo}", "{train}", "{test}", "{seed}"),
    params:
        evaluation=evaluation,
    log:
        "logs/eval/{algo}/{train}/seed{seed}/{test}.log",
    benchmark:
        "benchmarks/runs/eval/{algo}/{train}/seed{seed}/{test}.tsv"
    threads: 1
    message:
        "Evaluating {wildcards.algo} trained on {wildcards.train} (seed {wildcards.seed}), "
        "tested on {wildcards.test}"
    shell:
        "OMP_NUM_THREADS={threads} metastress evaluate --processed {input.processed} "
        "--split {input.split} --model {input.model} --evaluation {params.evaluation:q} "
        "--out {output.result} > {log} 2>&1"


# Figure 4a: the same models with a given number of adaptation steps.
rule evaluate_steps:
    input:
        processed=rules.prepare.output.processed,
        split=SPLIT_FILE,
        model=lambda w: model(w.algo, w.train, w.seed),
    output:
        result=paths.steps_file("{algo}", "{train}", "{test}", "{steps}", "{seed}"),
    params:
        evaluation=evaluation,
    log:
        "logs/ablation/steps/{algo}/{train}/seed{seed}/{test}/steps{steps}.log",
    benchmark:
        "benchmarks/runs/ablation/steps/{algo}/{train}/seed{seed}/{test}/steps{steps}.tsv"
    threads: 1
    message:
        "Evaluating {wildcards.algo} ({wildcards.train} -> {wildcards.test}, seed "
        "{wildcards.seed}) with {wildcards.steps} adaptation steps"
    shell:
        "OMP_NUM_THREADS={threads} metastress evaluate --processed {input.processed} "
        "--split {input.split} --model {input.model} --evaluation {params.evaluation:q} "
        "--steps {wildcards.steps} --out {output.result} > {log} 2>&1"


# Figure 4b: the initialization of one model adapted by another model's learned optimizer
# (both of the same seed).
rule evaluate_swap:
    input:
        processed=rules.prepare.output.processed,
        split=SPLIT_FILE,
        init=lambda w: model(w.init_of, w.test, w.seed),
        optimizer=lambda w: model(w.optimizer_of, w.test, w.seed),
    output:
        result=paths.swap_file("{test}", "{optimizer_of}", "{init_of}", "{seed}"),
    params:
        evaluation=evaluation,
    log:
        "logs/ablation/swap/{test}/seed{seed}/{optimizer_of}_adapts_{init_of}.log",
    benchmark:
        "benchmarks/runs/ablation/swap/{test}/seed{seed}/{optimizer_of}_adapts_{init_of}.tsv"
    wildcard_constraints:
        optimizer_of="|".join(ALGORITHMS),
    threads: 1
    message:
        "Evaluating the {wildcards.init_of} initialization adapted by {wildcards.optimizer_of} "
        "(seed {wildcards.seed})"
    shell:
        "OMP_NUM_THREADS={threads} metastress evaluate --processed {input.processed} "
        "--split {input.split} --evaluation {params.evaluation:q} --model {input.optimizer} "
        "--init-from {input.init} --out {output.result} > {log} 2>&1"


# Figure 4b: a model's initialization adapted by a hand optimizer (registry.hand_optimizers():
# Adam, SGD) whose learning rate and steps are chosen from experiments.fig4b.grid on the
# validation tasks the model trained with (the choice and every grid point's score beside the
# result), then tested.
rule evaluate_hand_swap:
    input:
        processed=rules.prepare.output.processed,
        split=SPLIT_FILE,
        init=lambda w: model(w.init_of, w.test, w.seed),
    output:
        result=paths.swap_file("{test}", "{optimizer_of}", "{init_of}", "{seed}"),
        choice=paths.swap_choice_file("{test}", "{optimizer_of}", "{init_of}", "{seed}"),
    params:
        evaluation=evaluation,
        grid=as_json(param("experiments", "fig4b", "grid")),
    log:
        "logs/ablation/swap/{test}/seed{seed}/{optimizer_of}_adapts_{init_of}.log",
    benchmark:
        "benchmarks/runs/ablation/swap/{test}/seed{seed}/{optimizer_of}_adapts_{init_of}.tsv"
    wildcard_constraints:
        optimizer_of="|".join(HAND_OPTIMIZERS),
    threads: 1
    message:
        "Tuning {wildcards.optimizer_of} on validation tasks for the {wildcards.init_of} "
        "initialization (seed {wildcards.seed}), then testing it"
    shell:
        "OMP_NUM_THREADS={threads} metastress evaluate --processed {input.processed} "
        "--split {input.split} --evaluation {params.evaluation:q} --model {input.init} "
        "--optimizer {wildcards.optimizer_of} --tune {params.grid:q} "
        "--choice-out {output.choice} --out {output.result} > {log} 2>&1"


# The metrics DVC compares across commits and experiments (`dvc exp show`, `dvc exp diff`):
# per algorithm a headline (mean test accuracy over Figure 2's settings), and per trained
# setting and transfer pair the test accuracy (mean over seeds), its CI and the training's
# numbers; and the validation curves `dvc plots` draws.
rule summary:
    input:
        evaluations=in_setting(trained_settings()) + transfers(),
        trainings=expand(
            rules.train_final.output.summary,
            algo=ALGORITHMS,
            setting=trained_settings(),
            seed=SEEDS,
        ),
        training_logs=expand(
            rules.train_final.output.metrics,
            algo=ALGORITHMS,
            setting=trained_settings(),
            seed=SEEDS,
        ),
    output:
        headline="metrics/headline.json",
        by_setting="metrics/by_setting.json",
        curves="metrics/validation_curves.csv",
    params:
        models=lambda w, input: [Path(summary).parent for summary in input.trainings],
        headline_settings=EXPERIMENTS["fig2"],
        folder=lambda w, output: Path(output.headline).parent,
    log:
        "logs/eval/summary.log",
    message:
        "Summarizing the metrics DVC compares"
    shell:
        "metastress summary --evaluations {input.evaluations} --models {params.models} "
        "--headline-settings {params.headline_settings} --out {params.folder} > {log} 2>&1"
