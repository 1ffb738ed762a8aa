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
# Test files run on parallel workers (pytest-xdist), whole files per worker (`--dist loadfile`: a
# file's module fixtures are built once), the longest files first (tests/suite_order.py; hence
# `--no-loadscope-reorder`). One worker per core, at most 4 (each starts its own servers);
# TEST_WORKERS=N sets it, TEST_WORKERS=0 runs everything in this process.
cores=$(nproc 2>/dev/null || echo 2)
workers=${TEST_WORKERS:-$(( cores < 4 ? cores : 4 ))}
if [ "$workers" != 0 ]; then
  set -- -n "$workers" --dist loadfile --no-loadscope-reorder "$@"
  # One native (OpenMP/BLAS) thread per worker and per server it starts: with a worker per core,
  # a library's second thread only waits for the first; spinning OpenMP threads made
  # tests/ingest/test_drift.py take 106-443 s instead of 24-38 s beside the other worker.
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} \
    MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
fi
.venv/bin/python -m pytest "$@"
code=$?
if [ $code -eq 5 ]; then
  echo "test: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit $code
