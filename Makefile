# Borsa: `make run` starts the platform offline; `make test` runs the whole suite.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
# uv from PATH, or the one `make install` puts into Python's site-packages.
UV    := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
MEMBERS := pyproject.toml $(wildcard */pyproject.toml services/*/pyproject.toml)
PYTEST_ARGS ?=
# Trust the system certificate store (machines behind a TLS-inspecting proxy add their CA there).
export UV_NATIVE_TLS := 1

.DEFAULT_GOAL := help
.PHONY: help install run test test-unit test-integration test-contract lint format bench clean migrate

help: ## Show the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-18s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## Create .venv with every package (installs uv from PyPI when missing)

$(VENV)/.installed: $(MEMBERS) $(wildcard uv.lock)
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		python3 -m pip install --quiet uv || python3 -m pip install --quiet --break-system-packages uv
	@# Bytecode compiled once, here: where PYTHONDONTWRITEBYTECODE is set, every process would otherwise compile ccxt
	@# (seconds of CPU) and Borsa's own packages again when it starts.
	$(UV) sync --all-packages --compile-bytecode
	$(PY) -m compileall -q -j 0 proto runtime testing db strategies services
	@touch $@

run: install ## Start Borsa offline: NATS, Postgres, simulator, connectors, runner, reporting, gateway, a demo
	$(PY) scripts/run.py

migrate: install ## Create and migrate the Postgres database named by DATABASE_URL (safe to repeat)
	@test -n "$$DATABASE_URL" || { echo "make migrate: DATABASE_URL is not set; run e.g. DATABASE_URL=postgresql://borsa@127.0.0.1:5432/borsa make migrate" >&2; exit 2; }
	$(PY) -m borsa_db upgrade

test: install ## Run the whole test suite (starts real nats-server, Postgres and simulator processes)
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: install ## Only the fast tier: no servers
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

test-integration: install ## Only tests that talk to real servers
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

test-contract: install ## Only the exchange contract suite (real ccxt classes against the simulator)
	$(PY) -m pytest -m contract $(PYTEST_ARGS)

lint: install ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install ## Benchmarks, printed as tables (see README)
	$(PY) bench/sim.py --write-readme
	$(PY) bench/connector_market.py --write-readme
	$(PY) bench/gateway.py --write-readme
	$(PY) bench/connector_orders.py --write-readme
	$(PY) bench/runner.py --write-readme
	$(PY) bench/reporting.py --write-readme

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
