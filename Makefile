# The two set-up commands of the README: `make demo` (the main job) and `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install demo test bench

install:
	./scripts/ensure-redis-server
	$(PIP) install -q -e ".[test]"

demo: install
	dranspose combined --demo

test: install
	$(PYTHON) -m pytest -q

bench: install
	$(PYTHON) bench/bench_pipeline.py --quick
