# metastress: Omniglot download -> 28x28 arrays -> class split -> per-setting search ->
# final training -> evaluation -> tables and figures. Configuration: params.yaml, validated
# against workflow/schemas/params.schema.yaml before any job runs.
from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    split=r"paper|lake",
    algo="|".join(ALGORITHMS),
    setting="|".join(config["settings"]),
    train="|".join(config["settings"]),
    test="|".join(config["settings"]),
    rung=r"\d+",
    part=r"\d+",
    steps=r"\d+",
    seed=r"\d+",
    optimizer_of="|".join(ALGORITHMS + HAND_OPTIMIZERS),
    init_of="|".join(ALGORITHMS),


include: "workflow/rules/data.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


localrules:
    all,
    download,  # needs the internet (or the mirror), which compute nodes often lack
    search_select,
    search_summary,
    train_summary,
    summary,
    table1,
    figure,
    fig1,


# Every file DVC versions, so that a plain `snakemake` rebuilds any of them that is missing
# (Snakemake rebuilds a missing intermediate file only when a job that needs it has to run).
rule all:
    default_target: True
    input:
        rules.download.output,
        rules.prepare.output,
        SPLIT_FILE,
        [search_parts(a, s) for a in ALGORITHMS for s in trained_settings()],
        expand(rules.search_select.output.best, algo=ALGORITHMS, setting=trained_settings()),
        expand(rules.search_summary.output.summary, algo=ALGORITHMS),
        expand(
            rules.train_final.output, algo=ALGORITHMS, setting=trained_settings(), seed=SEEDS
        ),
        expand(rules.train_summary.output.summary, algo=ALGORITHMS),
        expand(
            rules.train_fig1.output,
            algo=EXPERIMENTS["fig1"]["algorithms"],
            setting=EXPERIMENTS["fig1"]["setting"],
        ),
        swaps(paths.swap_choice_file),
        rules.summary.input.evaluations,
        [path for paths in FIGURE_INPUTS.values() for path in paths],
        rules.summary.output,
        rules.table1.output,
        rules.fig1.output,
        expand("figures/{figure}.{ext}", figure=FIGURES, ext=["pdf", "png", "csv"]),
