# Set-up and everyday entry points. Each target creates .venv first when it is missing.
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
# The offline Omniglot mirror beside the checkout, when there is one (see README).
MIRROR := $(firstword $(wildcard $(CURDIR)/../shared/omniglot))

export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
ifneq ($(MIRROR),)
export OMNIGLOT_MIRROR ?= $(MIRROR)
endif

.PHONY: reproduce test lint bench clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

reproduce: $(STAMP)  ## the main job: every table and figure on the active profile
	snakemake --cores all

test: $(STAMP)  ## the test suite, end-to-end workflow tests included
	pytest

lint: $(STAMP)
	ruff check .
	snakemake --lint

clean-venv:
	rm -rf $(VENV)
