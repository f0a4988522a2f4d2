# Two commands do all set-up on a fresh machine with only Python 3:
#   make demo   creates .venv, installs cluster_sim, runs the default experiment
#   make test   installs the dev extras and runs the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
OUT    ?= runs/demo

.PHONY: demo test test-all bench lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(DEVSTAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP) $@

demo: $(STAMP)
	$(VENV)/bin/cluster-sim demo --out $(OUT)

test: $(DEVSTAMP)
	$(PY) -m pytest

test-all: $(DEVSTAMP)
	$(PY) -m pytest --runslow

bench: $(DEVSTAMP)
	$(PY) -m benchmarks.run

lint: $(DEVSTAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy cluster_sim

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .hypothesis
