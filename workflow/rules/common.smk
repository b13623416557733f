# Shared imports, validation and the params accessor of every rule.
from snakemake.utils import validate

from metastress.config import check_semantics

validate(config, schema="../schemas/params.schema.yaml")
check_semantics(config)

SPLIT_FILE = f"data/splits/{config['data']['split']}.json"


def param(*keys):
    """The value at params.yaml keys[0].keys[1]..., for a rule's `params:`."""
    value = config
    for key in keys:
        value = value[key]
    return value
