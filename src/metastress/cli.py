"""The `metastress` command line: argument parsing only; each subcommand calls one function.

`metastress train ALGO SETTING` and `metastress evaluate ALGO SETTING [--test SETTING]` are
for people: they read params.yaml (`--params`, `--set key=value`) and the workflow's files.
The flags `--run`, `--processed`, `--split`, `--out`, ... are what the workflow's rules pass.
Importing this module does not import torch: light jobs (collect, search select) start fast.
"""

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from metastress import __version__, paths, registry

PEOPLE_OPTIONS = ("params", "set", "test", "seed")  # of `train/evaluate ALGO SETTING` only


def _data_download(args: argparse.Namespace) -> None:
    from metastress.data.download import fetch_archives

    fetch_archives(args.out, source=args.source, mirror=args.mirror or None)


def _data_prepare(args: argparse.Namespace) -> None:
    from metastress.data.prepare import prepare

    prepare(args.raw, args.out, workers=args.workers)


def _data_split(args: argparse.Namespace) -> None:
    from metastress.data.prepare import load_processed
    from metastress.data.splits import make_split, write_split

    split = make_split(
        load_processed(args.processed), args.name, args.seed, args.validation_fraction
    )
    write_split(split, args.out)


def _search_rung(args: argparse.Namespace) -> None:
    _keep_freed_memory()
    from metastress.halving import SearchPlan
    from metastress.search import run_rung

    run_rung(
        args.run,
        args.space,
        SearchPlan(**args.plan),
        args.rung,
        args.part,
        args.previous,
        args.processed,
        args.split,
        args.out,
        args.work_root,
    )


def _search_select(args: argparse.Namespace) -> None:
    from metastress.selection import select_best

    select_best(args.parts, args.out)


def _train(args: argparse.Namespace) -> None:
    _keep_freed_memory()
    if _by_name(args, ("run", "processed", "split", "out"), ("choice", "work_dir", "work_root")):
        from metastress.jobs import train_by_name

        train_by_name(_params(args), args.algo, args.setting, args.seed)
        return
    from metastress.experiments import apply_choice
    from metastress.selection import read_choice
    from metastress.train import train, train_config, work_dir_for

    run = args.run
    if args.choice is not None:
        run = apply_choice(run, read_choice(args.choice))
    config = train_config(run)
    work_dir = work_dir_for(config, args.work_root) if args.work_root else args.work_dir
    train(config, args.processed, args.split, args.out, work_dir)


def _evaluate(args: argparse.Namespace) -> None:
    _keep_freed_memory()
    required = ("model", "evaluation", "processed", "split", "out")
    optional = ("steps", "init_from", "optimizer", "optimizer_lr", "tune", "choice_out")
    if _by_name(args, required, optional):
        from metastress.jobs import evaluate_by_name

        test = args.test or args.setting
        result = evaluate_by_name(_params(args), args.algo, args.setting, test, args.seed)
        out = paths.evaluation_file(args.algo, args.setting, test, result["seed"])
        accuracy, ci95 = 100 * result["accuracy"], 100 * result["ci95"]
        print(f"{args.algo} {args.setting} -> {test}: {accuracy:.2f}% +- {ci95:.2f}; {out}")
        return
    if args.tune is not None:
        _tuned_swap(args)
        return
    from metastress.evaluate import evaluate

    evaluate(
        args.model,
        args.evaluation,
        args.processed,
        args.split,
        args.out,
        steps=args.steps,
        init_from=args.init_from,
        optimizer=args.optimizer,
        optimizer_lr=args.optimizer_lr,
    )


def _tuned_swap(args: argparse.Namespace) -> None:
    """--tune: a hand optimizer's rate and steps chosen on validation tasks, then tested."""
    given = {"--optimizer": args.optimizer, "--choice-out": args.choice_out}
    clashing = {
        "--optimizer-lr": args.optimizer_lr,
        "--steps": args.steps,
        "--init-from": args.init_from,
    }
    missing = [flag for flag, value in given.items() if value is None]
    extra = [flag for flag, value in clashing.items() if value is not None]
    if missing or extra:
        raise ValueError(
            f"--tune chooses the learning rate and steps of --optimizer and needs --optimizer "
            f"and --choice-out (missing: {', '.join(missing) or 'none'}), without "
            f"--optimizer-lr, --steps or --init-from (given: {', '.join(extra) or 'none'})"
        )
    from metastress.evaluate import tuned_swap

    tuned_swap(
        args.model,
        args.optimizer,
        args.tune,
        args.evaluation,
        args.processed,
        args.split,
        args.out,
        args.choice_out,
    )


def _by_name(args: argparse.Namespace, required: tuple[str, ...], optional: tuple) -> bool:
    """True for the people's form (ALGO SETTING and people's options), False for the rules'
    form (flags); a mix of the two, or an incomplete one, is an error saying what to give."""
    flags = ", ".join(f"--{key.replace('_', '-')}" for key in required)
    flagged = [key for key in (*required, *optional) if getattr(args, key) is not None]
    if not flagged:
        if args.algo is None or args.setting is None:
            raise ValueError(f"name what to run, e.g. maml 20w1s (or pass the rules' {flags})")
        return True
    missing = [f"--{key.replace('_', '-')}" for key in required if getattr(args, key) is None]
    people = [
        key for key in ("algo", "setting", *PEOPLE_OPTIONS) if getattr(args, key, None) is not None
    ]
    if missing or people:
        raise ValueError(
            f"the rules' form takes {flags} (missing: {', '.join(missing) or 'none'}) and no "
            f"ALGO SETTING or --params/--set/--test/--seed (given: {', '.join(people) or 'none'})"
        )
    return False


def _params(args: argparse.Namespace) -> dict:
    from metastress.config import load_params

    return load_params(args.params or paths.PARAMS, args.set or ())


def _keep_freed_memory() -> None:
    """glibc keeps freed memory (engine/malloc.py) in the jobs that run torch; imported here
    because importing the engine package imports torch."""
    from metastress.engine.malloc import keep_freed_memory

    keep_freed_memory()


def _report(args: argparse.Namespace) -> None:
    from metastress.report import main as report

    report(args.kind, args.inputs, args.out)


def _collect(args: argparse.Namespace) -> None:
    from metastress.collect import collect

    collect(args.inputs, args.root, args.fields, args.out)


def _summary(args: argparse.Namespace) -> None:
    from metastress.summary import summarize

    summarize(args.evaluations, args.models, args.headline_settings, args.out)


def _cost(args: argparse.Namespace) -> None:
    from metastress.config import load_params
    from metastress.cost_report import profile_report

    source, overrides = args.params or paths.PARAMS, list(args.set or ())
    params = load_params(source, overrides)
    names = list(params["profiles"]) if args.all else args.profile or [params["profile"]]
    for name in names:
        params = load_params(source, [*overrides, f"profile={name}"])
        print(profile_report(params, Path.cwd()), end="\n\n", flush=True)


def _json_arg(text: str) -> dict:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e}") from e


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="metastress", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="download, prepare and split Omniglot")
    data_commands = data.add_subparsers(dest="data_command", required=True)

    download = data_commands.add_parser("download", help="fetch and verify the two archives")
    download.add_argument("--out", required=True, help="folder for the archives (data/raw)")
    download.add_argument("--source", default=None, help="base URL of the official archives")
    download.add_argument("--mirror", default="", help="local mirror folder with MD5SUMS")
    download.set_defaults(func=_data_download)

    prepare = data_commands.add_parser("prepare", help="resize every image to 28x28 into one file")
    prepare.add_argument("--raw", required=True, help="folder holding the two archives")
    prepare.add_argument("--out", required=True, help="output .npz")
    prepare.add_argument("--workers", type=int, default=2, help="decoding processes")
    prepare.set_defaults(func=_data_prepare)

    split = data_commands.add_parser("split", help="write a class split as JSON")
    split.add_argument("--processed", required=True, help="the prepared .npz")
    split.add_argument("--name", required=True, choices=["paper", "lake"])
    split.add_argument("--seed", type=int, required=True)
    split.add_argument("--validation-fraction", type=float, default=0.1, help="lake split only")
    split.add_argument("--out", required=True, help="output .json")
    split.set_defaults(func=_data_split)

    search = commands.add_parser("search", help="hyperparameter search")
    search_commands = search.add_subparsers(dest="search_command", required=True)
    rung = search_commands.add_parser(
        "rung", help="train one part of a rung's trials to the rung's budget and score them"
    )
    _add_data_args(rung, required=True)
    rung.add_argument("--run", type=_json_arg, required=True, help="run config (JSON)")
    rung.add_argument("--space", type=_json_arg, required=True, help="search space (JSON)")
    rung.add_argument(
        "--plan", type=_json_arg, required=True, help="the search plan (JSON: halving.SearchPlan)"
    )
    rung.add_argument("--rung", type=int, required=True, help="rung index (0: every trial)")
    rung.add_argument("--part", type=int, required=True, help="which share of the rung's trials")
    rung.add_argument(
        "--previous",
        type=Path,
        nargs="*",
        default=[],
        help="the previous rung's part files, whose records say which trials go on",
    )
    rung.add_argument("--out", type=Path, required=True, help="this part's records (.json)")
    rung.add_argument(
        "--work-root",
        type=Path,
        required=True,
        help="trial i's checkpoints go to trial<i>/<config hash> below it, for resuming and "
        "extending",
    )
    rung.set_defaults(func=_search_rung)
    select = search_commands.add_parser("select", help="pick the best trial of the last rung")
    select.add_argument(
        "--parts", type=Path, nargs="+", required=True, help="every rung's part files"
    )
    select.add_argument("--out", type=Path, required=True)
    select.set_defaults(func=_search_select)

    train = commands.add_parser(
        "train",
        help="meta-train one algorithm on one setting",
        description="metastress train maml 20w1s [--seed N] [--set maml.first_order=false]: "
        "trains as the workflow does, into models/ALGO/SETTING/seedN, with the search's choice "
        "if there is one.",
    )
    _add_people_args(train)
    rules = train.add_argument_group("the workflow's form (what its rules pass)")
    _add_data_args(rules)
    rules.add_argument("--run", type=_json_arg, help="run config (JSON)")
    rules.add_argument("--choice", type=Path, help="search result whose choice overrides --run")
    rules.add_argument("--out", type=Path, help="run folder")
    work = rules.add_mutually_exclusive_group()
    work.add_argument(
        "--work-dir",
        type=Path,
        help="checkpoints; resuming under another config is refused (default: OUT/checkpoints)",
    )
    work.add_argument(
        "--work-root",
        type=Path,
        help="checkpoints in a subfolder per config hash: a changed config "
        "starts afresh, an interrupted run resumes",
    )
    train.set_defaults(func=_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="score a trained model on test tasks",
        description="metastress evaluate maml 20w1s [--test 40w5s] [--seed N]: scores "
        "models/ALGO/SETTING/seedN/model.pt on the test setting's fixed tasks, as the workflow "
        "does.",
    )
    _add_people_args(evaluate)
    evaluate.add_argument("--test", help="test setting (default: the training setting)")
    rules = evaluate.add_argument_group("the workflow's form (what its rules pass)")
    _add_data_args(rules)
    rules.add_argument("--model", type=Path, help="model.pt of the trained model")
    rules.add_argument("--evaluation", type=_json_arg, help="test setting and task count (JSON)")
    rules.add_argument("--steps", type=int, help="adaptation steps (default: the model's)")
    rules.add_argument("--init-from", type=Path, help="take the initialization from this model")
    rules.add_argument(
        "--optimizer",
        choices=registry.hand_optimizers(),
        help="adapt with this optimizer instead of the model's own",
    )
    rules.add_argument("--optimizer-lr", type=float, help="learning rate of --optimizer")
    rules.add_argument(
        "--tune",
        type=_json_arg,
        help='grid {"lr": [...], "steps": [...]} for --optimizer: choose on the validation '
        "tasks the model trained with, then test the choice",
    )
    rules.add_argument("--choice-out", type=Path, help="--tune: the choice and every grid score")
    rules.add_argument("--out", type=Path, help="result (.json)")
    evaluate.set_defaults(func=_evaluate)

    collect = commands.add_parser("collect", help="gather JSON results into one file")
    collect.add_argument("--inputs", type=Path, nargs="+", required=True)
    collect.add_argument("--root", type=Path, required=True, help="keys are paths below this")
    collect.add_argument("--fields", nargs="+", help="keep only these fields of each file")
    collect.add_argument("--out", type=Path, required=True)
    collect.set_defaults(func=_collect)

    summary = commands.add_parser("summary", help="the metrics DVC compares across experiments")
    summary.add_argument(
        "--evaluations",
        type=Path,
        nargs="+",
        required=True,
        help="results/eval/<algo>/<train>/seed<N>/<test>.json",
    )
    summary.add_argument(
        "--models",
        type=Path,
        nargs="+",
        required=True,
        help="models/<algo>/<setting>/seed<N> folders",
    )
    summary.add_argument(
        "--headline-settings", nargs="+", required=True, help="settings averaged per algorithm"
    )
    summary.add_argument("--out", type=Path, required=True, help="folder of the two JSON files")
    summary.set_defaults(func=_summary)

    cost = commands.add_parser(
        "cost",
        help="jobs, meta-iterations and hours of a profile, before anything runs",
        description="metastress cost [--profile NAME | --all]: the jobs per phase (Snakemake's "
        "own dry run), their meta-iterations and the estimated hours on this machine's CPU "
        "and on one H200, from the measured cost model (src/metastress/cost_model.json).",
    )
    cost.add_argument("--params", help=f"the configuration (default: {paths.PARAMS})")
    cost.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a params.yaml key, as for `metastress train`; repeatable",
    )
    which = cost.add_mutually_exclusive_group()
    which.add_argument("--profile", nargs="+", help="these profiles (default: the active one)")
    which.add_argument("--all", action="store_true", help="every profile in params.yaml")
    cost.set_defaults(func=_cost)

    report = commands.add_parser("report", help="tables and figures from result files")
    report.add_argument("kind", choices=registry.report_ids())
    report.add_argument("--inputs", type=Path, nargs="+", required=True)
    report.add_argument("--out", type=Path, required=True, help="output prefix, e.g. figures/fig2")
    report.set_defaults(func=_report)
    return parser


def _add_data_args(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument("--processed", type=Path, required=required, help="the prepared .npz")
    parser.add_argument("--split", type=Path, required=required, help="the split .json")


def _add_people_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("algo", nargs="?", choices=registry.meta_trained(), help="algorithm id")
    parser.add_argument("setting", nargs="?", help="a setting of params.yaml, e.g. 20w1s")
    parser.add_argument("--params", help=f"the configuration (default: {paths.PARAMS})")
    parser.add_argument(
        "--seed",
        type=int,
        help="training seed of the model (default: protocol.seed; protocol.seeds gives more)",
    )
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a params.yaml key (dotted, e.g. maml.inner_lr=0.1; a YAML value); "
        "repeatable, validated with the file",
    )


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if getattr(args, "source", "") is None:
        from metastress.data.download import OFFICIAL_URL

        args.source = OFFICIAL_URL
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        func(args)
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        sys.exit(f"metastress {args.command}: error: {e}")
