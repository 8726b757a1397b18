# Two commands for a fresh Linux machine with Python 3.11, make and venv:
#   make demo   -> runs the main job (the LA-Transformer demo on generated data)
#   make test   -> runs the whole test suite
PYTHON ?= python3
# Where PyPI serves a CUDA build of torch, take the CPU one: make test TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
TORCH_INDEX_URL ?=
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/activate setup.cfg pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	# torch first: the CPU wheel, so that no multi-GB CUDA build is pulled in.
	$(BIN)/pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/lareid demo

lint: install
	$(BIN)/ruff format --check src tests benchmarks examples spaces
	$(BIN)/ruff check src tests benchmarks examples spaces

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n 2 tests

clean:
	rm -rf $(VENV) build dist src/*.egg-info
