# lsbcore: one entry point. `make run` and `make test` are the two commands in the README.
#
#   make run     create .venv if missing, execute every notebook at full size, render HTML to build/html/
#   make test    create .venv if missing, unit tests + nbval over every notebook in fast mode (LSB_FAST=1)
#   make lab     open JupyterLab on notebooks/ (the .ipynb are generated from the .py sources)
#   make bench   run the benchmarks in bench/ (needs the [bench] extra: make bench-deps)
#   make dashboard NB=01   serve notebook 01's widgets alone (a lecture dashboard, no code) with Voilà
#
# `make test` also runs the browser tier (tests/test_ui.py: JupyterLab + Voilà in headless Chromium)
# when $(CHROMIUM) and the [ui] extra are present, and says so when it skips it.
#
# PyTorch: we never let pip resolve an unpinned torch (that can pull a CUDA build of several GB).
# If the environment has no torch, $(TORCH) is installed first; override it for a GPU, e.g.
#   make test TORCH="torch==2.5.1 --index-url https://download.pytorch.org/whl/cu121"
# or point PY at an interpreter of an environment you already have (nothing is installed then
# except lsbcore itself in editable mode):  make test PY=$$CONDA_PREFIX/bin/python

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY ?= $(VENV)/bin/python
TORCH ?= torch==2.13.0
# Tests and notebooks use small tensors, for which one CPU thread is faster than several that
# wait on each other (and the numbers are the same from run to run). Override: make test THREADS=4
THREADS ?= 1
NB_SRC := $(sort $(wildcard notebooks/[0-9]*.py))
NB_DIR := build/notebooks
NBVAL = $(PY) -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env --nbval-cell-timeout=120 $(NB_DIR)
HTML_DIR := build/html
STAMP := $(dir $(PY)).lsbcore-installed
CHROMIUM ?= /usr/bin/chromium
VOILA_ARGS ?=

.PHONY: env run test unit nbtest lab bench bench-deps notebooks clean dashboard

env: $(STAMP)

$(STAMP): pyproject.toml
	@if [ ! -x "$(PY)" ]; then echo ">> creating virtual environment $(VENV)"; $(PYTHON) -m venv $(VENV); fi
	@if ! $(PY) -c "import torch" 2>/dev/null; then \
	  echo ">> no torch in this environment: installing $(TORCH)"; \
	  $(PY) -m pip install -q $(TORCH); \
	else echo ">> using installed torch $$($(PY) -c 'import torch; print(torch.__version__)')"; fi
	$(PY) -m pip install -q -e ".[test]"
	@touch $@

# Paired notebooks: the jupytext .py is the committed source; .ipynb files are generated.
notebooks: env
	@mkdir -p $(NB_DIR)
	@for f in $(NB_SRC); do \
	  $(PY) -m jupytext --quiet --set-kernel python3 --to ipynb -o $(NB_DIR)/$$(basename $${f%.py}).ipynb $$f || exit 1; \
	done

unit: env
	$(PY) -m pytest -q -m "not ui" tests

nbtest: export OMP_NUM_THREADS = $(THREADS)
nbtest: notebooks
	@test -n "$(NB_SRC)" || { echo "no notebooks found"; exit 1; }
	@# notebooks are seeded and deterministic; the one flake seen here is infrastructure (a kernel reply
	@# lost over loopback, the kernel left idle until the cell timeout), so a failed run is repeated, three runs at most
	LSB_FAST=1 $(NBVAL) || { echo ">> nbval failed: running every notebook again in fresh kernels (try 2 of 3)"; \
	  LSB_FAST=1 $(NBVAL); } || { echo ">> nbval failed again: try 3 of 3"; LSB_FAST=1 $(NBVAL); }

test: export OMP_NUM_THREADS = $(THREADS)
test: env
	$(PY) -m pytest -q -m "not ui" tests
	$(MAKE) --no-print-directory nbtest
	@if [ ! -x "$(CHROMIUM)" ]; then echo "UI tier skipped: $(CHROMIUM) not found (apt-get install chromium)"; \
	elif ! $(PY) -c "import playwright, voila" 2>/dev/null; then \
	  echo "UI tier skipped: playwright/voila not installed ($(PY) -m pip install -e '.[ui]')"; \
	else echo ">> UI tier: notebooks in JupyterLab and Voila, headless $(CHROMIUM)"; \
	  LSB_CHROMIUM=$(CHROMIUM) timeout -k 30 1200 $(PY) -m pytest -q -s -p no:cacheprovider -m ui \
	    --durations=0 tests/test_ui.py; fi

run: export OMP_NUM_THREADS = $(THREADS)
run: env
	@test -n "$(NB_SRC)" || { echo "no notebooks found"; exit 1; }
	timeout 3600 $(PY) -m lsbcore render $(NB_SRC) --out $(HTML_DIR)
	@echo ">> rendered notebooks are in $(abspath $(HTML_DIR))/ (open them in a browser)"

lab: env
	$(PY) -m jupytext --sync notebooks/[0-9]*.py
	$(PY) -m jupyter lab notebooks

dashboard: env
	@test -n "$(NB)" || { echo "usage: make dashboard NB=01"; exit 1; }
	@$(PY) -c "import voila" 2>/dev/null || $(PY) -m pip install -q -e ".[ui]"
	@src=$$(ls notebooks/$(NB)*.py 2>/dev/null | head -n 1); \
	test -n "$$src" || { echo "no notebook notebooks/$(NB)*.py"; exit 1; }; \
	out=build/dashboards/$$(basename $${src%.py}).ipynb; \
	$(PY) -c "import sys; from lsbcore.build import dashboard_notebook; dashboard_notebook(*sys.argv[1:])" $$src $$out || exit 1; \
	echo ">> serving the widgets of $$src with Voila (Ctrl-C stops it)"; \
	$(PY) -m voila --strip_sources=True $(VOILA_ARGS) $$out

# --no-deps: the peers' own requirement lists pull in much more than the benchmarks import
# (torchcfm → torchdyn → lightning); what they need at run time is already installed.
bench-deps: env
	$(PY) -m pip install -q --no-deps "torchsde>=0.2.6" "torchcfm>=1.0" "trampoline>=0.1.2"

bench: env
	@for b in bench/*.py; do echo ">> $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf build .pytest_cache
