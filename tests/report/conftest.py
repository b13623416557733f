"""The write_eval fixture: synthetic evaluation files, valid unless a test says otherwise."""

import json
from pathlib import Path

import pytest
from report_helpers import make_eval


@pytest.fixture
def write_eval(tmp_path):
    """write_eval(**make_eval kwargs) -> path of a new JSON file under tmp_path/evals."""
    counter = iter(range(10_000))

    def write(record: dict | None = None, **kwargs) -> Path:
        path = tmp_path / "evals" / f"eval{next(counter)}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(record if record is not None else make_eval(**kwargs)))
        return path

    return write
