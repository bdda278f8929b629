# lsbcore: one entry point. `make run` and `make test` are the two commands in the README.
#
#   make run     create .venv if missing, execute every notebook at full size, render HTML to build/html/
#   make test    create .venv if missing, unit tests + nbval over every notebook in fast mode (LSB_FAST=1)
#   make lab     open JupyterLab on notebooks/ (each .ipynb is paired with its .py by jupytext)
#   make pair    rewrite each notebooks/NN_*.ipynb from its .py, outputs stripped (FROM=ipynb: the
#                .py from the .ipynb, after an edit made without jupytext, e.g. in Colab)
#   make test-py310   the unit tests on Python 3.10, the floor of requires-python (in ~/.cache/lsbcore/venv310)
#   make book    the course site (syllabus, paper-to-code map, every notebook) in build/book/html
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
#
# Without make (Windows): python -m pip install -e ".[test]", then python -m pytest -m "not ui" tests
# and python -m lsbcore render notebooks/01_schrodinger_system.py --out build/html (see the README).

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

# `timeout` (GNU coreutils) bounds the long runs; stock macOS has none (Homebrew's coreutils name it
# gtimeout), and then they run unbounded.
TIMEOUT := $(shell command -v timeout 2>/dev/null || command -v gtimeout 2>/dev/null)
limit = $(if $(TIMEOUT),$(TIMEOUT) $(1))

.PHONY: env run test unit nbtest lab pair bench bench-deps notebooks clean dashboard test-py310 book

env: $(STAMP)

$(STAMP): pyproject.toml
	@if [ ! -x "$(PY)" ]; then echo ">> creating virtual environment $(VENV)"; $(PYTHON) -m venv $(VENV); fi
	@if ! $(PY) -c "import torch" 2>/dev/null; then \
	  echo ">> no torch in this environment: installing $(TORCH)"; \
	  $(PY) -m pip install -q $(TORCH); \
	else echo ">> using installed torch $$($(PY) -c 'import torch; print(torch.__version__)')"; fi
	$(PY) -m pip install -q -e ".[test]"
	@touch $@

# Paired notebooks: the jupytext .py is the source, its .ipynb is committed beside it (no outputs)
# for Colab and Binder; tests/test_pairs.py fails `make test` when a pair drifts. nbval runs fresh
# copies in build/notebooks, so a test run never writes outputs into the committed files.
pair: env
ifeq ($(FROM),ipynb)
	$(PY) -m lsbcore.pairs --from-ipynb $(wildcard notebooks/[0-9]*.ipynb)
else
	$(PY) -m lsbcore.pairs $(NB_SRC)
endif

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
	@# the unit tests (one thread) run beside nbval (one kernel) on a second core; their report is
	@# printed when both are done, and either failing fails the target
	@mkdir -p build; echo ">> unit tests: running beside nbval, report in build/unit-tests.log"
	@$(PY) -m pytest -q -m "not ui" tests > build/unit-tests.log 2>&1 & unit=$$!; \
	$(MAKE) --no-print-directory nbtest; nb=$$?; \
	wait $$unit; u=$$?; echo ">> unit tests (exit $$u):"; tail -n 25 build/unit-tests.log; \
	test $$u -eq 0 && test $$nb -eq 0
	@# the student edition (solutions removed, stubs left) must also run to the end: the checks say
	@# "not attempted yet" instead of failing (a lost kernel reply restarts that notebook, twice at most)
	LSB_FAST=1 $(PY) -m lsbcore.build student-run $(NB_SRC)
	@if [ ! -x "$(CHROMIUM)" ]; then echo "UI tier skipped: $(CHROMIUM) not found (apt-get install chromium)"; \
	elif ! $(PY) -c "import playwright, voila" 2>/dev/null; then \
	  echo "UI tier skipped: playwright/voila not installed ($(PY) -m pip install -e '.[ui]')"; \
	else echo ">> UI tier: notebooks in JupyterLab and Voila, headless $(CHROMIUM)"; \
	  LSB_CHROMIUM=$(CHROMIUM) $(call limit,-k 30 1200) $(PY) -m pytest -q -s -p no:cacheprovider -m ui \
	    --durations=0 tests/test_ui.py; fi

run: export OMP_NUM_THREADS = $(THREADS)
run: env
	@test -n "$(NB_SRC)" || { echo "no notebooks found"; exit 1; }
	$(call limit,3600) $(PY) -m lsbcore render $(NB_SRC) --out $(HTML_DIR)
	@echo ">> rendered notebooks are in $(abspath $(HTML_DIR))/ (open them in a browser)"

# jupytext --sync first brings each pair up to date with whichever file is newer; JupyterLab then
# saves both files of a pair on every save, the .ipynb with its outputs: `make pair` strips them
# before a commit (`make test` says so when it finds any).
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

# The course site: each notebook executed once (student edition), rendered by Sphinx + MyST-NB into
# build/book/html, then checked offline in headless Chromium (tests/test_book.py). Executed notebooks
# are kept in build/book/executed and re-run only when a notebook, the package or data/ changed.
#   make book BOOK_ARGS=--fast                 smaller sizes (LSB_FAST=1), e.g. in CI
#   make book BOOK_ARGS="--edition instructor --out build/book-instructor"
BOOK_ARGS ?=
book: export OMP_NUM_THREADS = $(THREADS)
book: env
	@$(PY) -c "import myst_nb, sphinx_book_theme, sphinx_mathjax_offline" 2>/dev/null || $(PY) -m pip install -q -e ".[book]"
	$(PY) -m lsbcore.book $(BOOK_ARGS)
	@if [ ! -x "$(CHROMIUM)" ]; then echo "book browser test skipped: $(CHROMIUM) not found (apt-get install chromium)"; \
	elif ! $(PY) -c "import playwright, voila" 2>/dev/null; then echo "book browser test skipped: install the [ui] extra"; \
	else LSB_CHROMIUM=$(CHROMIUM) $(PY) -m pytest -q -s -p no:cacheprovider -m ui tests/test_book.py; fi

# ---- Python 3.10, the floor of requires-python: the unit tests in their own environment ----------
# .ci/run runs it after `make test`. torch is installed first and pinned, never resolved by pip:
# $(TORCH310) defaults to the CPU wheel of download.pytorch.org; where only PyPI is reachable,
# `make test-py310 TORCH310=torch==2.13.0` takes PyPI's build, which on Linux is the CUDA one
# (~3.5 GB with its nvidia-* wheels; it runs on a CPU).
PYENV_ROOT ?= $(HOME)/.pyenv
PY310 ?= $(or $(lastword $(sort $(wildcard $(PYENV_ROOT)/versions/3.10.*/bin/python))),$(shell command -v python3.10 2>/dev/null))
# outside the checkout, so that a later clone on the same machine (CI's) reuses torch and the deps;
# lsbcore itself is re-installed (editable, no deps: seconds) from the current checkout on every run
VENV310 ?= $(HOME)/.cache/lsbcore/venv310
TORCH310 ?= torch==2.13.0+cpu --index-url https://download.pytorch.org/whl/cpu
STAMP310 := $(VENV310)/.lsbcore-installed

$(STAMP310): pyproject.toml
	@test -n "$(PY310)" || { echo "no Python 3.10 found (pyenv install 3.10, or make test-py310 PY310=/path/to/python3.10)"; exit 1; }
	@if [ ! -x "$(VENV310)/bin/python" ]; then echo ">> creating $(VENV310) with $(PY310)"; mkdir -p $(dir $(VENV310)); $(PY310) -m venv $(VENV310); fi
	@$(VENV310)/bin/python -c "import sys; assert sys.version_info[:2] == (3, 10), sys.version" \
	  || { echo "$(VENV310) is not a Python 3.10 environment: remove it"; exit 1; }
	@if ! $(VENV310)/bin/python -c "import torch" 2>/dev/null; then \
	  echo ">> no torch in $(VENV310): installing $(TORCH310)"; $(VENV310)/bin/python -m pip install -q $(TORCH310) || exit 1; \
	else echo ">> $(VENV310) uses torch $$($(VENV310)/bin/python -c 'import torch; print(torch.__version__)')"; fi
	$(VENV310)/bin/python -m pip install -q -e ".[test]"
	@touch $@

test-py310: export OMP_NUM_THREADS = $(THREADS)
test-py310: $(STAMP310)
	$(VENV310)/bin/python -m pip install -q --no-deps -e .
	@echo ">> unit tests on $$($(VENV310)/bin/python --version)"
	$(VENV310)/bin/python -m pytest -q -p no:cacheprovider -m "not ui" tests

clean:
	rm -rf build .pytest_cache
