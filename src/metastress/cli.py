"""The `metastress` command line: argument parsing only; each subcommand calls one function."""

import argparse
import json
import sys
from collections.abc import Callable


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


def _json_arg(text: str) -> dict:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e}") from e


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="metastress", description=__doc__)
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
    return parser


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
