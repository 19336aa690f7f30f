# The two commands of the README:
#   make demo   set up (Docker engine, images, Python env) and run the example integration suite on 4 agents
#   make test   set up and run the project's tests (lint, types, unit, integration with Ray and Docker)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
AGENTS ?= 4

.PHONY: demo test setup browser engine images lint test-fast clean bench bench-18 cluster-demo test-cluster

$(BIN)/orchestrate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/orchestrate browser

# Debian's chromium, for the `browser` tests of the HTML report (skipped when it is missing):
# installed once, left alone when present.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } \
		|| echo "warning: could not install chromium; the browser tests will be skipped"

engine:
	bash deploy/setup-docker.sh

images: engine
	bash deploy/images/build.sh

demo: setup images
	$(BIN)/orchestrate run examples/integration --stack examples/integration/stack.yml --agents $(AGENTS) \
		--junitxml .orchestrate/demo-junit.xml --results .orchestrate/demo-results.json
	@echo "--- the plan for the next run, from the durations the first run stored:"
	$(BIN)/orchestrate plan examples/integration --agents $(AGENTS)
	@echo "--- the second run, planned from those durations:"
	$(BIN)/orchestrate run examples/integration --stack examples/integration/stack.yml --agents $(AGENTS) \
		--junitxml .orchestrate/demo-junit.xml --results .orchestrate/demo-results.json

lint: setup
	$(BIN)/ruff check orchestrator agents tests examples benchmarks
	$(BIN)/ruff format --check orchestrator agents tests examples benchmarks
	$(BIN)/mypy

test: setup images lint
	$(BIN)/pytest tests

# Unit tests only: no Ray, no Docker, a few seconds.
test-fast: setup
	$(BIN)/pytest tests/unit

# Every goal of issue 11 in one run (benchmarks/README.md); REAL=CHECKOUT adds the real suite,
# prepared first with `bash benchmarks/real_suite.sh CHECKOUT`.
bench: setup
	$(BIN)/python benchmarks/run.py --all $(if $(REAL),--real $(REAL))

# Every target of issue 18 in one run (benchmarks/README.md), then 100,000 tests; the public suites
# come from checkouts you fetch, prepared first with `bash benchmarks/public_suites.sh NAME=CHECKOUT ...`:
#   make bench-18 REAL=networkx-checkout SQLALCHEMY=sqlalchemy-checkout REDIS_PY=redis-py-checkout
bench-18: setup images
	$(BIN)/python benchmarks/run.py --issue18 $(if $(REAL),--real $(REAL)) \
		$(if $(SQLALCHEMY),--public sqlalchemy=$(SQLALCHEMY)) $(if $(REDIS_PY),--public redis-py=$(REDIS_PY))
	$(BIN)/python benchmarks/scale.py --agents auto

clean:
	-$(BIN)/orchestrate clean

# A Ray head and 2 worker nodes as containers (each worker with its own dockerd), the example
# suite on 4 agents over them, then everything down; exits with the run's exit code.
cluster-demo: setup images
	bash deploy/cluster/cluster.sh demo

# The cluster tier alone: brings the containerised cluster up once (about 30 s warm).
test-cluster: setup images
	$(BIN)/pytest tests/cluster -m cluster
