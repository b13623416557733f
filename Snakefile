# metastress: Omniglot download -> 28x28 arrays -> class split -> per-setting search ->
# final training -> evaluation -> tables and figures. Configuration: params.yaml, validated
# against workflow/schemas/params.schema.yaml before any job runs.
from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


include: "workflow/rules/common.smk"


wildcard_constraints:
    split=r"paper|lake",
    algo="|".join(ALGORITHMS),
    setting="|".join(config["settings"]),
    train="|".join(config["settings"]),
    test="|".join(config["settings"]),
    trial=r"\d+",
    steps=r"\d+",
    optimizer_of="|".join(ALGORITHMS + ["adam"]),
    init_of="|".join(ALGORITHMS),


include: "workflow/rules/data.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


localrules:
    all,
    download,  # needs the internet (or the mirror), which compute nodes often lack
    evaluate_all,
    report_all,
    search_select,
    search_summary,
    train_summary,
    metrics,
    table1,
    figure,
    fig1,


# Every table and figure, and the per-algorithm summaries and metrics DVC versions.
rule all:
    default_target: True
    input:
        rules.table1.output,
        expand("figures/{figure}.{ext}", figure=FIGURES, ext=["pdf", "png", "csv"]),
        expand("results/search/{algo}.json", algo=ALGORITHMS),
        expand("models/{algo}.json", algo=ALGORITHMS),
        rules.metrics.output.metrics,


# The evaluation phase alone (DVC's evaluate stage).
rule evaluate_all:
    input:
        rules.metrics.output.metrics,
        FIGURE_INPUTS["fig4a"],
        FIGURE_INPUTS["fig4b"],


# The report phase alone (DVC's report stage).
rule report_all:
    input:
        rules.table1.output,
        expand("figures/{figure}.{ext}", figure=FIGURES, ext=["pdf", "png", "csv"]),
