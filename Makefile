# Two commands for a newcomer: `make demo` (the main job) and `make test`.
# Each creates .venv and installs torch==2.13.0 first (a local CPU build; letting pip pick
# another torch would download gigabytes), then the project.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: venv demo test lint typecheck imports deps check proof bench clean browser

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

# Every import is a declared dependency: the installed packages need no dev extra (a dev-only
# httpx once broke `roisearch search` after `pip install .`), tests/ and bench/ no transitive one.
FIRST_PARTY := $(foreach p,shared api worker roisearch demo migrations tests bench,--known-first-party $(p))
deps: $(STAMP)
	$(VENV)/bin/deptry shared api worker roisearch demo migrations
	$(VENV)/bin/deptry tests bench --exclude tests/fixtures $(FIRST_PARTY) --ignore DEP002,DEP004

check: lint typecheck imports deps

test: $(STAMP) check
	$(PY) -m pytest

proof: $(STAMP)
	$(PY) -m bench.proof

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
