# The README's two commands: `make demo` (the main job) and `make test`.
# Each builds the virtual environment on first use, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV ?= .venv
# A CPU build of torch, installed before the package so that its `torch` requirement is met and
# pip never pulls a multi-GB CUDA build. GPU users: `make TORCH=` (skip it) after installing the
# CUDA build that matches their driver into .venv, or set TORCH to that requirement.
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: demo test benchmarks clean

demo: $(VENV)/.installed
	$(BIN)/ferrogym demo --out results/demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest

benchmarks: $(VENV)/.installed
	for script in benchmarks/[!t]*.py; do $(BIN)/python $$script || exit 1; done

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(if $(TORCH),$(BIN)/python -m pip install --quiet $(TORCH))
	$(BIN)/python -m pip install --quiet -e ".[test,distributed,interop]"
	touch $@

clean:
	rm -rf $(VENV) results
