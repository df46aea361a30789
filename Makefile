# annotator: set-up, tests, lint, benchmarks, quickstart. Every target installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip
# torch first, pinned: here it resolves to the CPU build on disk; a bare `torch` would pull a CUDA build of
# several GB. Elsewhere, install PyTorch's CPU build for your platform first (see README).
TORCH  ?= torch==2.13.0

.PHONY: install test test-fast lint format bench quickstart clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -e ".[all,dev]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not model"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy annotator

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m benchmarks

QUICKSTART_DIR ?= quickstart-project
quickstart: $(STAMP)
	rm -rf $(QUICKSTART_DIR)
	$(BIN)/annotator init $(QUICKSTART_DIR) --example sentiment
	cd $(QUICKSTART_DIR) && ../$(BIN)/annotator import example rotten-tomatoes --n 1000 --seed 1
	cd $(QUICKSTART_DIR) && ../$(BIN)/annotator split --test 0.3 --seed 1 --stratify-by-coder critics
	cd $(QUICKSTART_DIR) && ../$(BIN)/annotator codebook check codebooks/sentiment.yaml
	cd $(QUICKSTART_DIR) && ../$(BIN)/annotator prompt list
	cd $(QUICKSTART_DIR) && ../$(BIN)/annotator prompt render sentiment/zero-shot.v2
	cd $(QUICKSTART_DIR) && ../$(BIN)/annotator models pull smollm2
	cd $(QUICKSTART_DIR) && ../$(BIN)/annotator run --prompt sentiment/zero-shot.v2 --model local/smollm2 --split dev --sample 20
	cd $(QUICKSTART_DIR) && ../$(BIN)/annotator runs
	cd $(QUICKSTART_DIR) && ../$(BIN)/annotator status

clean:
	rm -rf $(VENV) $(QUICKSTART_DIR) build dist .pytest_cache .ruff_cache .mypy_cache
