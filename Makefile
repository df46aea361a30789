# annotator: set-up, tests, lint, benchmarks, quickstart. Every target installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip
# torch first, pinned: here it resolves to the CPU build on disk; a bare `torch` would pull a CUDA build of
# several GB. Elsewhere, install PyTorch's CPU build for your platform first (see README).
TORCH  ?= torch==2.13.0

.PHONY: install test test-fast lint format bench quickstart clean browser

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -e ".[all,dev]"
	touch $(STAMP)

# the report test opens the HTML in headless Chromium (Debian's package `chromium`)
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	    else echo "chromium is missing: sudo apt-get install -y chromium (or set ANNOTATOR_SKIP_BROWSER=1)" >&2; fi; }

test: $(STAMP) browser
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
# the whole pipeline on 600 bundled sentences, offline (see `annotator quickstart --help`)
quickstart: $(STAMP)
	rm -rf $(QUICKSTART_DIR)
	$(BIN)/annotator quickstart $(QUICKSTART_DIR)

clean:
	rm -rf $(VENV) $(QUICKSTART_DIR) build dist .pytest_cache .ruff_cache .mypy_cache
