# Two commands do all the set-up on a fresh machine:
#   make demo   - venv, install, finetune VQA on the synthetic world, print the metric table
#   make test   - venv with the dev extra, the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# The demo's outputs; `make demo RUNS=/somewhere` moves them.
RUNS ?= runs
DATA ?= data

.PHONY: demo test lint venv venv-dev constraints clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade -c constraints.txt pip setuptools wheel

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -q -c constraints.txt -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	touch $@ $(VENV)/.installed

venv: $(VENV)/.installed
venv-dev: $(VENV)/.installed-dev

demo: venv
	$(BIN)/vltasks fit --config vqa_demo data.root=$(DATA)/synthetic_vqav2 trainer.default_root_dir=$(RUNS)

test: venv-dev
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: venv-dev
	$(BIN)/ruff check .

constraints: venv-dev
	$(PIP) freeze --exclude-editable | grep -v '^vltasks' > constraints.txt.new
	@echo "review constraints.txt.new, then move it over constraints.txt"

clean:
	rm -rf $(VENV) build dist *.egg-info
