# The two set-up commands of the README: `make demo` (the main job) and `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install test-env lint demo test bench

install:
	./scripts/ensure-redis-server
	$(PIP) install -q -e ".[test,lint]"

# What the tests need beyond the package: the h5pyd 0.18.0 venv, every allowed cbor2 release,
# headless Chromium (browser tests) and kubectl (Kubernetes render tests); tests never install
# anything.
test-env: install
	PYTHON=$(PYTHON) ./scripts/ensure-h5pyd018
	PYTHON=$(PYTHON) ./scripts/ensure-cbor2-versions
	./scripts/ensure-chromium
	./scripts/ensure-kubectl

# The static gates (versions pinned in the `lint` extra; configuration in pyproject.toml).
lint: install
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy

demo: install
	dranspose combined --demo

test: test-env
	$(PYTHON) -m pytest -q

bench: install
	$(PYTHON) bench/bench_pipeline.py --quick
