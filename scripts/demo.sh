#!/usr/bin/env bash
# `make demo`: the engine's main job on its embedded default (digits with 20% injected label noise).
set -euo pipefail
cd "$(dirname "$0")/.."
export DATA_ENGINE_HOME=${DATA_ENGINE_HOME:-$PWD/.data-engine}
DE=".venv/bin/data-engine"
$DE init
$DE seed-demo --noise 0.2 --seed 0
if $DE --help | grep -q "demo-loop"; then
  exec $DE demo-loop
fi
$DE ingest "$DATA_ENGINE_HOME"/landing/gold/*.csv "$DATA_ENGINE_HOME"/landing/*.csv
$DE status
