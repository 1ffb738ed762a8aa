# The two commands a newcomer runs: `make demo` and `make test`.
# The engine home: DATA_ENGINE_HOME from the environment (or HOME_DIR), else .data-engine here.
HOME_DIR ?= $(CURDIR)/.data-engine
DATA_ENGINE_HOME ?= $(HOME_DIR)
export DATA_ENGINE_HOME

.PHONY: setup demo test test-fast up down clean

setup:  ## venvs from the pinned locks (idempotent, quick when nothing changed)
	@bash scripts/setup.sh

demo: setup  ## set up, start Label Studio, run the engine's loop on the digits default
	@bash scripts/demo.sh

test: setup  ## the whole suite, real Label Studio and Dagster included
	@bash scripts/test.sh

test-fast: setup  ## the tests that start no server (no Label Studio, Dagster daemon, Dask, PostgreSQL, browser)
	@bash scripts/test.sh --fast

up: setup  ## Label Studio and the Dagster UI (127.0.0.1:$DAGSTER_PORT, default 3000) with sensors on, for this home
	@bash scripts/up.sh

down:  ## stop this home's Dagster (webserver, daemon) and Label Studio
	@bash scripts/down.sh
	@bash scripts/postgres.sh down || true

clean:  ## remove the venvs (the engine home is kept)
	rm -rf .venv .venv-ls .venv.log .venv-ls.log
