# neurodelay: `make figures` (set up, run the analyses, draw the figures), `make test` (set up, run the tests).
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
export NEURODELAY_CACHE ?= $(CURDIR)/build/cache
export NUMBA_CACHE_DIR ?= $(NEURODELAY_CACHE)/numba
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0

.PHONY: setup test test-fast figures bench clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@PYBIN=$$(.ci/find-python) || exit 1; \
	  echo "using $$PYBIN"; \
	  [ -x $(PY) ] || $$PYBIN -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,sweeps]'
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

figures: $(STAMP)
	$(PY) paper_figures/make_all.py

bench: $(STAMP)
	$(PY) bench/forward.py --quick --json build/bench/forward.json
	$(PY) bench/gradient.py --quick --json build/bench/gradient.json
	$(PY) bench/sweep.py --quick --json build/bench/sweep.json

clean:
	rm -rf build
