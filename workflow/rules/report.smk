# Report phase: tables and figures, from result files only.

FIG3 = EXPERIMENTS["fig3"]
FIG4A = EXPERIMENTS["fig4a"]
FIG4B = EXPERIMENTS["fig4b"]
FIG1 = EXPERIMENTS["fig1"]
STEP_COUNTS = [2**i for i in range(PROFILE["step_ablation_max"].bit_length())]


# Table 1: 20-way 1- and 5-shot, mean +- 95% CI.
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


# Figure 1: MetaLSTM vs MetaLSTM++ learned-initialization trajectories.
rule fig1:
    input:
        [f"models/{a}/{FIG1['setting']}/trajectory.pt" for a in FIG1["algorithms"]],
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
    params:
        every=PROFILE["trajectory_every"],
    log:
        "logs/report/fig1.log",
    message:
        "Drawing fig1"
    shell:
        "metastress report fig1 --inputs {input} --every {params.every} --out figures/fig1 "
        "> {log} 2>&1"


FIGURE_INPUTS = {
    "fig2": in_setting(EXPERIMENTS["fig2"]),
    # per pair: transfer, in-setting on the train and on the test setting (each file once)
    "fig3": list(
        dict.fromkeys(
            evaluation_file(a, train, test)
            for a in ALGORITHMS
            for pair in FIG3
            for train, test in (
                (pair["train"], pair["test"]),
                (pair["train"], pair["train"]),
                (pair["test"], pair["test"]),
            )
        )
    ),
    "fig4a": [
        f"results/ablation/steps/{a}/{FIG4A['train']}/{FIG4A['test']}/steps{s}.json"
        for a in ALGORITHMS
        for s in STEP_COUNTS
    ],
    "fig4b": [
        f"results/ablation/swap/{FIG4B['setting']}/{swap['optimizer_of']}_adapts_{swap['init_of']}.json"
        for swap in FIG4B["swaps"]
    ]
    + in_setting([FIG4B["setting"]]),
}
