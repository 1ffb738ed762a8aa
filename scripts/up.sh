#!/usr/bin/env bash
# `make up`: Label Studio on 127.0.0.1 and Dagster (webserver + daemon, sensors on) for this home.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATA_ENGINE_HOME=${DATA_ENGINE_HOME:-$PWD/.data-engine}
# Two cores: parallelism is spent on folds; native libraries each get one thread (no oversubscription).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
DE=".venv/bin/data-engine"
[ -f "$DATA_ENGINE_HOME/engine.toml" ] || $DE init
export DAGSTER_HOME="$DATA_ENGINE_HOME/dagster"
mkdir -p "$DAGSTER_HOME"
cp scripts/dagster.yaml "$DAGSTER_HOME/dagster.yaml"
# Services on PostgreSQL when asked (DATA_ENGINE_SERVICES_DB=postgres) or already there: scripts/postgres.sh.
source scripts/postgres.sh hook
if $DE --help | grep -q labelstudio; then
  $DE labelstudio up
  # The Dagster resource reads the key from the environment (never from code or config).
  LABEL_STUDIO_API_KEY=$($DE labelstudio token)
  export LABEL_STUDIO_API_KEY
fi
echo "Dagster UI: http://127.0.0.1:3000/asset-groups  (Ctrl-C stops it)"
exec .venv/bin/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml
