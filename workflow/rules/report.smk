# Report phase: tables and figures, from result files only.

FIG3 = EXPERIMENTS["fig3"]
FIG4A = EXPERIMENTS["fig4a"]
FIG4B = EXPERIMENTS["fig4b"]
FIG1 = EXPERIMENTS["fig1"]
STEP_COUNTS = [2**i for i in range(PROFILE["step_ablation_max"].bit_length())]


# Table 1: 20-way 1- and 5-shot, mean +- 95% CI (and the s.d. over seeds, with several).
rule table1:
    input:
        in_setting(EXPERIMENTS["table1"]),
    output:
        md="tables/table1.md",
        csv=report("tables/table1.csv", caption="../report/table1.rst", category="Table 1"),
        tex="tables/table1.tex",
    log:
        "logs/report/table1.log",
    message:
        "Writing Table 1"
    shell:
        "metastress report table1 --inputs {input} --out tables/table1 > {log} 2>&1"


# Figures 2, 3, 4a, 4b: figures/<name>.{pdf,png,csv}.
rule figure:
    input:
        lambda w: FIGURE_INPUTS[w.figure],
    output:
        pdf="figures/{figure}.pdf",
        png=report(
            "figures/{figure}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
        csv="figures/{figure}.csv",
    log:
        "logs/report/{figure}.log",
    wildcard_constraints:
        figure="fig2|fig3|fig4a|fig4b",
    message:
        "Drawing {wildcards.figure}"
    shell:
        "metastress report {wildcards.figure} --inputs {input} --out figures/{wildcards.figure} "
        "> {log} 2>&1"


# Figure 1: MetaLSTM vs MetaLSTM++ learned-initialization trajectories, every meta-update.
rule fig1:
    input:
        [paths.trajectory_file(a, FIG1["setting"]) for a in FIG1["algorithms"]],
    output:
        pdf="figures/fig1.pdf",
        png=report(
            "figures/fig1.png",
            caption="../report/fig1.rst",
            category="Figures",
            labels={"figure": "fig1"},
        ),
        csv="figures/fig1.csv",
        summary="figures/fig1_summary.csv",
    log:
        "logs/report/fig1.log",
    message:
        "Drawing fig1"
    shell:
        "metastress report fig1 --inputs {input} --out figures/fig1 > {log} 2>&1"


FIGURE_INPUTS = {
    "fig2": in_setting(EXPERIMENTS["fig2"]),
    # per pair: transfer, in-setting on the train and on the test setting (each file once)
    "fig3": list(
        dict.fromkeys(
            evaluation_file(a, train, test, seed)
            for a in ALGORITHMS
            for pair in FIG3
            for train, test in (
                (pair["train"], pair["test"]),
                (pair["train"], pair["train"]),
                (pair["test"], pair["test"]),
            )
            for seed in SEEDS
        )
    ),
    "fig4a": [
        paths.steps_file(a, FIG4A["train"], FIG4A["test"], s, seed)
        for a in ALGORITHMS
        for s in STEP_COUNTS
        for seed in SEEDS
    ],
    "fig4b": swaps(paths.swap_file) + in_setting([FIG4B["setting"]]),
}
