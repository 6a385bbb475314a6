# The two set-up commands of the README: `make demo` (the main job) and `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install test-env demo test bench

install:
	./scripts/ensure-redis-server
	$(PIP) install -q -e ".[test]"

# What the tests need beyond the package: the h5pyd 0.18.0 venv and every allowed cbor2
# release (tests never install anything).
test-env: install
	PYTHON=$(PYTHON) ./scripts/ensure-h5pyd018
	PYTHON=$(PYTHON) ./scripts/ensure-cbor2-versions

demo: install
	dranspose combined --demo

test: test-env
	$(PYTHON) -m pytest -q

bench: install
	$(PYTHON) bench/bench_pipeline.py --quick
