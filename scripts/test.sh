#!/usr/bin/env bash
# The test suite. Without arguments: all of it, real servers included (the tests start Label Studio
# and Dagster themselves). `--fast`: only the tests that start no server, i.e. not marked
# `integration` (Label Studio, the Dagster daemon, Dask, PostgreSQL), `browser`, `slow` or `heavy`
# (the tests measured at 1 s or more, tests/heavy_tests.txt); no browser set-up. Further arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fast" ]; then
  shift
  set -- -m "not integration and not browser and not slow and not heavy" "$@"
else
  bash scripts/browser.sh || exit 1
fi
# The layers contract of pyproject's [tool.importlinter] (docs/architecture.md, "Layers"): an
# import against the loop's order fails the suite (fast or whole) before any test runs.
.venv/bin/lint-imports pyproject.toml || { echo "test: an import runs against the layers" >&2; exit 1; }
.venv/bin/python -m pytest "$@"
code=$?
if [ $code -eq 5 ]; then
  echo "test: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit $code
