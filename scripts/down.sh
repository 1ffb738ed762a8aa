#!/usr/bin/env bash
# `make down`: stop this home's Dagster webserver and daemon (by the pid files `make up` wrote) and
# its Label Studio server. `--dagster-only` leaves Label Studio running.
set -uo pipefail
cd "$(dirname "$0")/.."
export DATA_ENGINE_HOME=${DATA_ENGINE_HOME:-$PWD/.data-engine}
DAGSTER_HOME="$DATA_ENGINE_HOME/dagster"
for name in webserver daemon; do
  pidfile="$DAGSTER_HOME/$name.pid"
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    # The process leads its own group (setsid in up.sh): the signal reaches its children too.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "down: Dagster $name (pid $pid) ignored SIGTERM for 20 s; sending SIGKILL" >&2
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    fi
    echo "stopped Dagster $name (pid $pid)"
  fi
  rm -f "$pidfile"
done
if [ "${1:-}" != "--dagster-only" ]; then
  .venv/bin/data-engine labelstudio down || true
fi
