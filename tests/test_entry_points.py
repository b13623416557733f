"""How jobs start: `python -m metastress` is the CLI, the training and evaluation code
imports no params-validation machinery (jsonschema), so a bare GPU image can run it, and the
command line itself imports no torch, so light jobs start fast."""

import subprocess
import sys


def python(code_or_args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *code_or_args], capture_output=True, text=True)


def test_python_dash_m_metastress_is_the_cli():
    result = python(["-m", "metastress", "train", "--help"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: metastress train")


def test_training_and_evaluation_do_not_import_jsonschema():
    code = (
        "import sys, metastress.cli, metastress.train, metastress.evaluate, metastress.search, "
        "metastress.experiments; print('jsonschema' in sys.modules)"
    )
    result = python(["-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_the_command_line_imports_no_torch():
    code = (
        "import sys, metastress.cli; metastress.cli.build_parser(); print('torch' in sys.modules)"
    )
    result = python(["-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
