# Quick start:  make demo   (runs the example sweep with pytest --deriva-run, shows the record, runs a
#                            notebook that plots it as a tracked run, compares the sweep, and prints the
#                            command that opens the web viewer)
#               make test   (runs the whole test suite, with the DERIVA server leg where it can start one)
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,examples,ui,notebooks]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m pytest --deriva-run examples/experiments -p no:randomly
	$(BIN)/python examples/show_runs.py
	$(BIN)/python examples/dataset_demo.py
	$(BIN)/pytest-deriva notebook run examples/notebooks/digits_sweep_report.ipynb
	$(BIN)/pytest-deriva runs --limit 5
	$(BIN)/pytest-deriva compare --sort accuracy $$($(BIN)/pytest-deriva runs --limit 0 --json \
	  | $(BIN)/python -c "import json, sys; print([r['RID'] for r in json.load(sys.stdin) if r['Kind'].startswith('sweep')][-1])")
	@echo "see the runs in your browser: $(BIN)/pytest-deriva ui"

# The whole suite; the server leg runs against the local DERIVA server when .ci/with-server can
# start it (root, with ../shared/deriva-server beside the checkout), and skips otherwise; one
# pytest-xdist worker per core.
test: $(STAMP)
	.ci/with-server $(BIN)/python -m pytest -n auto

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

# Every benchmark (the server's first), then one table of the performance goals (issue 13): figure, limit, holds.
bench: $(STAMP)
	.ci/with-server $(BIN)/python benchmarks/bench_server.py
	$(BIN)/python benchmarks/goals.py

clean:
	rm -rf $(VENV) .deriva build dist src/*.egg-info
