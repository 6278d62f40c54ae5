# Thin wrappers. Every target creates the pinned environment first (python3 + uv or pip; no conda).
VENV   ?= .venv
PYTHON := $(VENV)/bin/python
export JAX_PLATFORMS ?= cpu

.PHONY: env tutorial notebooks lab test test-unit bench lint clean

env: $(VENV)/.environment.sha256

$(VENV)/.environment.sha256: environment.yml pyproject.toml scripts/setup_env.py
	python3 scripts/setup_env.py --venv $(VENV)

## tutorial: execute every notebook and build the docs site (strict; unchanged notebooks are cached)
tutorial: env
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html
	@echo
	@echo "The tutorial site is built. Open file://$(CURDIR)/docs/_build/html/index.html"
	@echo "or serve it: $(PYTHON) -m http.server -d docs/_build/html 8000  (then http://127.0.0.1:8000)"

## notebooks: for authors, re-execute the notebooks in place and re-pair their MyST twins
notebooks: env
	$(PYTHON) scripts/execute_notebooks.py

## lab: open the notebooks in JupyterLab
lab: env
	$(VENV)/bin/jupyter lab notebooks/

## test: unit tests, notebook hygiene and nbval re-execution of every notebook
test: env
	$(PYTHON) -m pytest

## test-unit: the unit tests of helpers, scripts and benchmarks alone (no notebooks, no site, not slow)
test-unit: env
	$(PYTHON) -m pytest -o addopts="--strict-markers" -n 2 -m "not slow" tests --ignore=tests/test_docs.py

## bench: helpers vs the pure-JAX reference on a grid of sizes (not part of `make test`; ~20 min)
bench: env
	$(PYTHON) -m benchmarks.bench

## lint: ruff's checks and formatting, the import layers of helpers (import-linter) and mypy over helpers
lint: env
	$(VENV)/bin/ruff check helpers tests scripts benchmarks conftest.py docs/conf.py
	$(VENV)/bin/ruff format --check helpers tests scripts benchmarks conftest.py docs/conf.py
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) docs/_build .pytest_cache
