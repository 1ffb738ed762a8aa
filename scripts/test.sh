#!/usr/bin/env bash
# The whole test suite, real servers included (the tests start Label Studio and Dagster themselves).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/browser.sh || exit 1
# The layers contract of pyproject's [tool.importlinter] (docs/architecture.md, "Layers"): an
# import against the loop's order fails the suite before any test runs.
.venv/bin/lint-imports --config pyproject.toml || { echo "test: an import runs against the layers" >&2; exit 1; }
.venv/bin/python -m pytest "$@"
code=$?
if [ $code -eq 5 ]; then
  echo "test: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit $code
