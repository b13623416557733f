"""Gather small JSON results into one file keyed by their paths: what DVC versions and shows
as metrics (`dvc metrics show` flattens the nesting)."""

import json
from pathlib import Path

from metastress.atomic import write_json


def collect(inputs: list[Path], root: Path, fields: list[str] | None, out: Path) -> dict:
    """{path relative to root, without suffix: the file's `fields` (all when None)}."""
    gathered = {}
    for path in inputs:
        try:
            record = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:  # JSONDecodeError, UnicodeDecodeError
            raise RuntimeError(
                f"{path}: unreadable result ({e}); delete it and rerun snakemake to regenerate it"
            ) from e
        missing = [f for f in fields or [] if not isinstance(record, dict) or f not in record]
        if missing:
            raise RuntimeError(
                f"{path}: lacks the field(s) {missing}; delete it and rerun snakemake to "
                "regenerate it"
            )
        key = Path(path).with_suffix("").relative_to(root).as_posix()
        gathered[key] = {f: record[f] for f in fields} if fields else record
    write_json(out, gathered)
    return gathered
