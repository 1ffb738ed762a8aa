#!/usr/bin/env bash
# The whole test suite, real servers included (the tests start Label Studio and Dagster themselves).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/browser.sh || exit 1
.venv/bin/python -m pytest "$@"
code=$?
if [ $code -eq 5 ]; then
  echo "test: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit $code
