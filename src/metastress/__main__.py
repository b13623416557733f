"""`python -m metastress`: the `metastress` command, where no console script is installed."""

from metastress.cli import main

main()
