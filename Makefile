# annotator: set-up, tests, lint, benchmarks, quickstart. Every target installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip
# torch first, pinned: here it resolves to the CPU build on disk; a bare `torch` would pull a CUDA build of
# several GB. Elsewhere, install PyTorch's CPU build for your platform first (see README).
TORCH  ?= torch==2.13.0

.PHONY: install test test-fast lint format bench quickstart clean browser screenshots postgres

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -e ".[all,dev]"
	touch $(STAMP)

# the report test opens the HTML in headless Chromium, the workbench test drives it with Selenium through
# chromedriver (Debian's packages `chromium` and `chromium-driver`: no browser is downloaded at run time)
browser:
	@{ command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; } && \
	  command -v chromedriver >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver; \
	    else echo "chromium is missing: sudo apt-get install -y chromium chromium-driver (or set ANNOTATOR_SKIP_BROWSER=1)" >&2; fi; }

# the store, import, run, agreement and workbench tests also run against a real PostgreSQL server: a throw-away
# cluster in a temp folder (tests/postgres_server.py) from Debian's package `postgresql`
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq postgresql; \
	    else echo "PostgreSQL is missing: sudo apt-get install -y postgresql (or set ANNOTATOR_SKIP_POSTGRES=1)" >&2; fi; }

# the README's pictures of the workbench, taken by its browser test
screenshots: $(STAMP) browser
	ANNOTATOR_SCREENSHOTS=docs $(BIN)/python -m pytest -q tests/test_workbench_browser.py

test: $(STAMP) browser postgres
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
