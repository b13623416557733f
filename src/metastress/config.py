"""Load params.yaml, validate it against the workflow's JSON schema, and check what a schema
cannot (ways against the split's classes, images per class, a key both fixed and searched).

The schema is workflow/schemas/params.schema.yaml completed from `metastress.registry`: one
section per meta-trained algorithm, holding the keys of its hyperparameter dataclass (each
described once in the YAML's `$defs/algorithm_keys`), and the enum of algorithm ids that the
experiments refer to. Snakemake (workflow/rules/common.smk) and the command line
(`metastress train maml 20w1s`, `--params` to name another file, `--set key=value` to
override) both validate through `validate_params`, so a bad file fails before any job runs,
with the same message either way. Torch-free: Snakemake imports it.
"""

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from metastress import registry
from metastress.halving import plan_from_profile

if TYPE_CHECKING:
    import jsonschema

SCHEMA_RELPATH = Path("workflow/schemas/params.schema.yaml")
IMAGES_PER_CHARACTER = 20
BACKGROUND_CHARACTERS, EVALUATION_CHARACTERS = 964, 659
PAPER_SPLIT_SIZES = {"train": 980, "validation": 220, "test": 423}
META_KEYS = ("meta_lr", "meta_batch")  # meta-training keys, set or searched per algorithm
FIG1_KEYS = (*META_KEYS, "inner_steps")  # what experiments.fig1 fixes for its pair


class ParamsError(ValueError):
    """params.yaml is invalid; the message names the key, the value and the fix."""


def schema_path(params_path: str | Path = "params.yaml") -> Path:
    """The schema beside a params file's workflow/ folder, else the one of this checkout."""
    beside = Path(params_path).resolve().parent / SCHEMA_RELPATH
    return beside if beside.is_file() else Path(__file__).resolve().parents[2] / SCHEMA_RELPATH


def load_schema(params_path: str | Path = "params.yaml") -> dict:
    """The schema of params.yaml, its algorithm parts derived from the registry."""
    path = schema_path(params_path)
    return with_algorithms(yaml.safe_load(path.read_text()), str(path))


def with_algorithms(schema: dict, source: str = "the schema") -> dict:
    """`schema` completed from the registry: a section per meta-trained algorithm (its keys
    from $defs/algorithm_keys, the rest from $defs/algorithm_section), each section required,
    and $defs/algorithm_id, the enum of their ids ($defs/hand_optimizer_id: the hand
    optimizers'). Which keys a section must hold depends on what its space searches:
    `check_search_keys` says."""
    schema = copy.deepcopy(schema)
    defs = schema["$defs"]
    template, described = defs["algorithm_section"], defs["algorithm_keys"]
    ids = registry.meta_trained()
    defs["algorithm_id"] = {"enum": ids}
    defs["hand_optimizer_id"] = {"enum": registry.hand_optimizers()}
    for algo in ids:
        keys = registry.section_keys(algo)
        undescribed = [key for key in keys if key not in described]
        if undescribed:
            raise ParamsError(
                f"{source}: $defs.algorithm_keys has no entry for {undescribed}, config keys of "
                f"{algo}; describe each key there"
            )
        section = copy.deepcopy(template)
        section["description"] = registry.algorithm(algo).summary
        section["properties"] = {
            **{key: {"$ref": f"#/$defs/algorithm_keys/{key}"} for key in keys},
            **template["properties"],
        }
        schema["properties"][algo] = section
        schema["required"].append(algo)
    return schema


def load_params(path: str | Path = "params.yaml", overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Read params.yaml, apply `key=value` overrides (dotted keys, YAML values) and validate
    the result; raise ParamsError on the first problem."""
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError as e:
        raise ParamsError(f"{path} not found; run from the repository root or pass --params") from e
    except yaml.YAMLError as e:
        raise ParamsError(f"{path} is not valid YAML: {e}") from e
    source = f"{path} with --set {' '.join(overrides)}" if overrides else str(path)
    params = apply_overrides(params, overrides, source)
    validate_params(params, load_schema(path), source=source)
    return params


def apply_overrides(params: dict, overrides: Sequence[str], source: str = "params.yaml") -> dict:
    """A copy of params with each "a.b.c=value" override set (the value read as YAML)."""
    params = copy.deepcopy(params)
    for item in overrides:
        key, equals, text = item.partition("=")
        if not equals or not key:
            raise ParamsError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. a.b=1")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ParamsError(f"--set {item!r}: the value is not valid YAML ({e})") from e
        *parents, leaf = key.split(".")
        node = params
        for depth, part in enumerate(parents, start=1):
            if not isinstance(node, dict) or not isinstance(node.get(part), dict):
                where = ".".join(parents[:depth])
                raise ParamsError(
                    f"--set {item!r}: {where} is not a section of {source}; name an existing "
                    "section (see workflow/schemas/params.schema.yaml)"
                )
            node = node[part]
        node[leaf] = value
    return params


def validate_params(params: Any, schema: dict, source: str = "params.yaml") -> None:
    import jsonschema  # only here: training and evaluation jobs never validate params.yaml

    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(params))
    if error is not None:
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        hint = _hint(error)
        raise ParamsError(f"{source}: {key}: {error.message}{hint}")
    check_semantics(params, source)


def _hint(error: "jsonschema.ValidationError") -> str:
    if error.validator == "enum" and isinstance(error.instance, bool):  # protocol.graphs: off
        return "; YAML reads a bare off, on, no or yes as a boolean: put the word in quotes"
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        return f"; known keys here: {', '.join(known)}" if known else ""
    if error.validator == "anyOf":  # e.g. `adam` or an algorithm id: name every choice
        choices = []
        for sub in error.context:
            choices += [sub.validator_value] if sub.validator == "const" else []
            choices += sub.validator_value if sub.validator == "enum" else []
        return f"; expected one of {choices}"
    description = error.schema.get("description")
    return f" ({description})" if description else ""


def split_sizes(data: dict) -> dict[str, int]:
    """Characters in each part of the configured split, known without reading the data."""
    if data["split"] == "paper":
        return dict(PAPER_SPLIT_SIZES)
    n_val = round(BACKGROUND_CHARACTERS * data["lake_validation_fraction"])
    return {
        "train": BACKGROUND_CHARACTERS - n_val,
        "validation": n_val,
        "test": EVALUATION_CHARACTERS,
    }


def n_query(params: dict, setting: str) -> int:
    return params["protocol"]["n_query"] or params["settings"][setting]["k_shot"]


def algorithm_sections(params: dict) -> list[str]:
    """The sections that configure an algorithm: every one has a search `space`."""
    return [name for name, value in params.items() if isinstance(value, dict) and "space" in value]


def space_entries(params: dict, algo: str) -> dict[str, tuple[str, ...]]:
    """Each key `algo` searches -> the params.yaml path of its range in effect: the active
    profile's `space` entry replaces the algorithm's own for the keys the algorithm searches."""
    name = params["profile"]
    profile_space = params["profiles"][name]["space"]
    return {
        key: ("profiles", name, "space", key) if key in profile_space else (algo, "space", key)
        for key in params[algo]["space"]
    }


def check_semantics(params: dict, source: str = "params.yaml") -> None:
    """Settings must fit the split's classes and the 20 images of a character, every name the
    experiments use must exist, and each algorithm key has one meaning."""
    check_references(params, source)
    check_search_keys(params, source)
    check_search_plans(params, source)
    sizes = split_sizes(params["data"])
    smallest_part = min(sizes, key=sizes.get)
    for name, setting in params["settings"].items():
        if setting["n_way"] > sizes[smallest_part]:
            raise ParamsError(
                f"{source}: settings.{name}.n_way: {setting['n_way']}-way tasks need "
                f"{setting['n_way']} classes, but the {params['data']['split']} split's "
                f"{smallest_part} part has only {sizes[smallest_part]}; lower n_way or remove "
                f"the setting"
            )
        k, q = setting["k_shot"], n_query(params, name)
        if k + q > IMAGES_PER_CHARACTER:
            raise ParamsError(
                f"{source}: settings.{name}: k_shot + n_query = {k} + {q} exceeds the "
                f"{IMAGES_PER_CHARACTER} images of a character; lower k_shot or protocol.n_query"
            )


def check_references(params: dict, source: str = "params.yaml") -> None:
    """Names used in `profile`, `experiments` and a profile's final_iterations_by_setting must
    exist; transfer pairs share n_way; Figure 1's pair searches nothing that experiments.fig1
    does not fix."""
    if params["profile"] not in params["profiles"]:
        raise ParamsError(
            f"{source}: profile: {params['profile']!r} is not one of {sorted(params['profiles'])}"
        )
    settings, experiments = params["settings"], params["experiments"]
    named = [(f"experiments.{k}", s) for k in ("table1", "fig2") for s in experiments[k]]
    for i, pair in enumerate(experiments["fig3"]):
        named += [(f"experiments.fig3.{i}.{key}", pair[key]) for key in ("train", "test")]
    named += [(f"experiments.fig4a.{key}", experiments["fig4a"][key]) for key in ("train", "test")]
    named += [
        ("experiments.fig4b.setting", experiments["fig4b"]["setting"]),
        ("experiments.fig1.setting", experiments["fig1"]["setting"]),
    ]
    for profile_name, prof in params["profiles"].items():
        key = f"profiles.{profile_name}.final_iterations_by_setting"
        named += [(key, name) for name in prof.get("final_iterations_by_setting", {})]
    for key, name in named:
        if name not in settings:
            raise ParamsError(
                f"{source}: {key}: setting {name!r} is not defined; add it under `settings` "
                f"(defined: {', '.join(settings)})"
            )
    for key, pair in [(f"experiments.fig3.{i}", p) for i, p in enumerate(experiments["fig3"])] + [
        ("experiments.fig4a", experiments["fig4a"])
    ]:
        if settings[pair["train"]]["n_way"] != settings[pair["test"]]["n_way"]:
            raise ParamsError(
                f"{source}: {key}: {pair['train']} and {pair['test']} differ in n_way; a model's "
                "output layer fixes its ways, so transfer pairs must share n_way"
            )
    swaps = experiments["fig4b"]["swaps"]
    needed = (
        set(experiments["fig1"]["algorithms"])
        | {s["init_of"] for s in swaps}
        | {s["optimizer_of"] for s in swaps if s["optimizer_of"] not in registry.hand_optimizers()}
    )
    missing = sorted(needed - set(experiments["algorithms"]))
    if missing:
        raise ParamsError(
            f"{source}: experiments.fig1/fig4b use {missing}, which are not in "
            "experiments.algorithms; add them there"
        )
    for algo in experiments["fig1"]["algorithms"]:
        unfixed = sorted(set(space_entries(params, algo)) - set(FIG1_KEYS))
        if unfixed:
            raise ParamsError(
                f"{source}: experiments.fig1.algorithms: {algo} searches {unfixed}, which "
                f"Figure 1's training cannot choose (experiments.fig1 fixes {list(FIG1_KEYS)} "
                f"for the pair); fix them in {algo}'s section (and delete them from its space), "
                "or draw other algorithms"
            )


def check_search_plans(params: dict, source: str = "params.yaml") -> None:
    """Every profile's search must be runnable: under halving, each rung's budget a whole
    number of iterations."""
    for name, profile in params["profiles"].items():
        try:
            plan_from_profile(profile)
        except ValueError as e:
            raise ParamsError(f"{source}: profiles.{name}: {e}") from e


def check_search_keys(params: dict, source: str = "params.yaml") -> None:
    """A key in an algorithm's section is what runs, so the search must not choose it too (its
    choice would silently replace the value); every key of the algorithm and the meta-training
    keys must be set or searched; a profile's space entry must replace the range of a key some
    algorithm searches."""
    sections = algorithm_sections(params)
    searched = set().union(*(params[algo]["space"] for algo in sections))
    for name, profile in params["profiles"].items():
        unknown = sorted(set(profile["space"]) - searched)
        if unknown:
            raise ParamsError(
                f"{source}: profiles.{name}.space: {unknown} is searched by no algorithm, so "
                f"this range would never be used (a profile's space only replaces the ranges of "
                f"keys an algorithm's own space has: {sorted(searched)}); fix the name, or add "
                "the key to an algorithm's space"
            )
    for algo in sections:
        section, entries = params[algo], space_entries(params, algo)
        for key in sorted(set(section) & set(entries)):
            entry = ".".join(entries[key])
            raise ParamsError(
                f"{source}: {algo}.{key}: {section[key]!r} would never run: the search chooses "
                f"{algo}.{key} (its range is {entry}). To change what the search tries, edit "
                f"{entry}; to run one fixed value, delete {algo}.space.{key}; otherwise remove "
                f"{algo}.{key}"
            )
        for key in (*registry.section_keys(algo), *META_KEYS):
            if key not in section and key not in entries:
                raise ParamsError(
                    f"{source}: {algo}.{key} is not set: give it a value in {algo}, or search it "
                    f"with a range in {algo}.space.{key}"
                )
