# neurodelay: `make figures` (set up, run the analyses, draw the figures), `make test` (set up, run the tests),
# `make docs` (the documentation site with its gallery, into build/docs/html; warnings are errors).
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
export NEURODELAY_CACHE ?= $(CURDIR)/build/cache
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0
# the tests run on one worker process per core, up to 4 (pytest-xdist); a test file stays on one worker,
# so its module fixtures are computed once. `make test PARALLEL=` runs them in one process.
PARALLEL ?= -n auto --maxprocesses=4 --dist loadfile

.PHONY: setup test test-fast figures bench docs clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@PYBIN=$$(.ci/find-python) || exit 1; \
	  echo "using $$PYBIN"; \
	  [ -x $(PY) ] || $$PYBIN -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,sweeps,docs]'
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q $(PARALLEL) --durations=25

test-fast: $(STAMP)
	$(PY) -m pytest -q $(PARALLEL) -m "not slow"

figures: $(STAMP)
	$(PY) paper_figures/make_all.py

docs: $(STAMP)
	rm -rf docs/generated docs/auto_examples docs/sg_execution_times.rst build/docs
	$(PY) -m sphinx -b html -W --keep-going -q docs build/docs/html -d build/docs/doctrees
	@echo "open build/docs/html/index.html"

bench: $(STAMP)
	$(PY) bench/forward.py --quick --json build/bench/forward.json
	$(PY) bench/gradient.py --quick --json build/bench/gradient.json
	$(PY) bench/first_call.py --json build/bench/first_call.json
	$(PY) bench/sweep.py --quick --json build/bench/sweep.json

clean:
	rm -rf build docs/generated docs/auto_examples docs/sg_execution_times.rst
