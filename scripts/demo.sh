#!/usr/bin/env bash
# `make demo`: the engine's main job on its embedded default (digits with 20% injected label noise):
# start Label Studio, seed a fresh home, and run rounds of the loop with the simulated reviewer.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATA_ENGINE_HOME=${DATA_ENGINE_HOME:-$PWD/.data-engine}
DE=".venv/bin/data-engine"
if [ -f "$DATA_ENGINE_HOME/warehouse.duckdb" ]; then
  # A demo starts from the noisy labels; the previous run's home is kept beside it.
  echo "demo: keeping the previous demo home as $DATA_ENGINE_HOME.previous"
  $DE labelstudio down >/dev/null 2>&1 || true
  rm -rf "$DATA_ENGINE_HOME.previous"
  mv "$DATA_ENGINE_HOME" "$DATA_ENGINE_HOME.previous"
fi
$DE init
$DE seed-demo --noise 0.2 --seed 0
$DE demo-loop
