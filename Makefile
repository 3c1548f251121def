# Two commands for a newcomer: `make demo` (the main job) and `make test`.
# Each creates .venv and installs torch==2.13.0 first (a local CPU build; letting pip pick
# another torch would download gigabytes), then the project.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: venv demo test lint typecheck imports check proof bench clean browser

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/roisearch demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

imports: $(STAMP)
	$(VENV)/bin/lint-imports

check: lint typecheck imports

test: $(STAMP) check
	$(PY) -m pytest

proof: $(STAMP)
	$(PY) -m bench.proof

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
