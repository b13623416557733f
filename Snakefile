# metastress: Omniglot download -> 28x28 arrays -> class split -> search -> training ->
# evaluation -> tables and figures. Configuration: params.yaml (validated before any job).
from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


include: "workflow/rules/common.smk"


wildcard_constraints:
    split=r"paper|lake",


include: "workflow/rules/data.smk"


rule all:
    default_target: True
    input:
        rules.prepare.output.processed,
        SPLIT_FILE,
