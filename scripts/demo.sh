#!/usr/bin/env bash
# `make demo`: the engine's main job on its embedded default (digits with 20% injected label noise):
# start Label Studio, seed a fresh home, and run rounds of the loop with the simulated reviewer.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATA_ENGINE_HOME=${DATA_ENGINE_HOME:-$PWD/.data-engine}
# Two cores: parallelism is spent on folds; native libraries each get one thread (no oversubscription).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
DE=".venv/bin/data-engine"
if [ -f "$DATA_ENGINE_HOME/warehouse.duckdb" ]; then
  if [ ! -f "$DATA_ENGINE_HOME/oracle.csv" ]; then
    echo "demo: $DATA_ENGINE_HOME holds an engine that is not the demo's; point DATA_ENGINE_HOME elsewhere" >&2
    exit 2
  fi
  # A demo starts from the noisy labels; the previous run's home is kept beside it.
  echo "demo: keeping the previous demo home as $DATA_ENGINE_HOME.previous"
  $DE labelstudio down >/dev/null 2>&1 || true
  rm -rf "$DATA_ENGINE_HOME.previous"
  mv "$DATA_ENGINE_HOME" "$DATA_ENGINE_HOME.previous"
fi
$DE init
$DE seed-demo --noise 0.2 --seed 0
$DE demo-loop
# The rounds ran outside Dagster: record them in the home's Dagster instance, so `make up` shows the
# loop's history (materializations, the gate's checks, the noise matrices).
export DAGSTER_HOME="$DATA_ENGINE_HOME/dagster"
mkdir -p "$DAGSTER_HOME"
cp scripts/dagster.yaml "$DAGSTER_HOME/dagster.yaml"
.venv/bin/python -m assets.history
