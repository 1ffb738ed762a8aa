#!/usr/bin/env bash
# `make up`: Label Studio on 127.0.0.1 and Dagster (webserver + daemon, sensors on) for this home.
# DATA_ENGINE_HOME picks the home (default .data-engine), DAGSTER_PORT the UI's port (default 3000).
# The webserver and the daemon run as two processes, each in its own process group with a pid file
# in $DAGSTER_HOME, so `make down` (scripts/down.sh) stops them by id; Ctrl-C here stops them too.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATA_ENGINE_HOME=${DATA_ENGINE_HOME:-$PWD/.data-engine}
PORT=${DAGSTER_PORT:-3000}
# Two cores: parallelism is spent on folds; native libraries each get one thread (no oversubscription).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
DE=".venv/bin/data-engine"
[ -f "$DATA_ENGINE_HOME/engine.toml" ] || $DE init
export DAGSTER_HOME="$DATA_ENGINE_HOME/dagster"
mkdir -p "$DAGSTER_HOME"
cp scripts/dagster.yaml "$DAGSTER_HOME/dagster.yaml"
# Services on PostgreSQL when asked (DATA_ENGINE_SERVICES_DB=postgres) or already there: scripts/postgres.sh.
source scripts/postgres.sh hook
for name in webserver daemon; do
  pidfile="$DAGSTER_HOME/$name.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "up: Dagster $name already runs for $DATA_ENGINE_HOME (pid $(cat "$pidfile")); 'make down' stops it" >&2
    exit 1
  fi
done
# Create (or upgrade) the instance's storage once, before two processes open it: a daemon and a
# webserver creating fresh SQLite storage at the same moment race their alembic migrations, leave
# two heads in schedules.db, and the code location then never loads (seen under load).
if ! .venv/bin/dagster instance migrate >"$DAGSTER_HOME/migrate.log" 2>&1; then
  echo "up: the Dagster instance in $DAGSTER_HOME could not be created or migrated: $(tail -n 1 "$DAGSTER_HOME/migrate.log") (full log: $DAGSTER_HOME/migrate.log)" >&2
  exit 1
fi
if $DE --help | grep -q labelstudio; then
  $DE labelstudio up
  # The Dagster resource reads the key from the environment (never from code or config).
  LABEL_STUDIO_API_KEY=$($DE labelstudio token)
  export LABEL_STUDIO_API_KEY
fi
# setsid: each process leads its own group, so one signal reaches the runs it launched as well.
setsid .venv/bin/dagster-daemon run -w workspace.yaml >"$DAGSTER_HOME/daemon.log" 2>&1 &
echo $! >"$DAGSTER_HOME/daemon.pid"
setsid .venv/bin/dagster-webserver -h 127.0.0.1 -p "$PORT" -w workspace.yaml >"$DAGSTER_HOME/webserver.log" 2>&1 &
echo $! >"$DAGSTER_HOME/webserver.pid"
trap 'bash scripts/down.sh --dagster-only; exit 0' INT TERM
echo "Dagster UI: http://127.0.0.1:$PORT/asset-groups  (home $DATA_ENGINE_HOME; Ctrl-C or 'make down' stops it)"
echo "logs: $DAGSTER_HOME/daemon.log, $DAGSTER_HOME/webserver.log"
wait
