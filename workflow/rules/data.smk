# Data phase: archives -> one 28x28 uint8 array file -> a class split.


# Fetch both Omniglot archives (official URL, or the OMNIGLOT_MIRROR / data.mirror folder),
# verified against their MD5s before they are moved into place.
rule download:
    output:
        background="data/raw/images_background.zip",
        evaluation="data/raw/images_evaluation.zip",
    params:
        source=param("data", "source"),
        mirror=param("data", "mirror"),
    log:
        "logs/data/download.log",
    message:
        "Fetching the Omniglot archives"
    shell:
        "metastress data download --out data/raw --source={params.source:q} "
        "--mirror={params.mirror:q} > {log} 2>&1"


# Resize all 32,460 images to 28x28 (PIL LANCZOS on the greyscale image).
rule prepare:
    input:
        background=rules.download.output.background,
        evaluation=rules.download.output.evaluation,
    output:
        processed="data/processed/omniglot28.npz",
    log:
        "logs/data/prepare.log",
    benchmark:
        "benchmarks/runs/prepare.tsv"
    threads: 2
    message:
        "Resizing Omniglot to 28x28"
    shell:
        "metastress data prepare --raw data/raw --out {output.processed} "
        "--workers {threads} > {log} 2>&1"


# Split characters into meta-train / meta-validation / meta-test by identity.
rule split:
    input:
        processed=rules.prepare.output.processed,
    output:
        split="data/splits/{split}.json",
    params:
        seed=param("data", "split_seed"),
        validation_fraction=param("data", "lake_validation_fraction"),
    log:
        "logs/data/split_{split}.log",
    message:
        "Writing the {wildcards.split} split"
    shell:
        "metastress data split --processed {input.processed} --name {wildcards.split} "
        "--seed {params.seed} --validation-fraction {params.validation_fraction} "
        "--out {output.split} > {log} 2>&1"
