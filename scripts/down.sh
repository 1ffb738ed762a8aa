#!/usr/bin/env bash
# `make down`: stop this home's Dagster webserver and daemon (by the pid files `make up` wrote) and
# its Label Studio server. `--dagster-only` leaves Label Studio running.
set -uo pipefail
cd "$(dirname "$0")/.."
export DATA_ENGINE_HOME=${DATA_ENGINE_HOME:-$PWD/.data-engine}
DAGSTER_HOME="$DATA_ENGINE_HOME/dagster"
GRACE=${DATA_ENGINE_DOWN_GRACE:-20}  # seconds a process group gets after SIGTERM before SIGKILL
# A live (not zombie) thread in group $1: exited children wait for init to reap them. Threads
# (-L), not processes: a killed process's leader thread shows as a zombie while its other threads,
# which share its sockets, still exit.
group_alive() {
  local pids
  pids=$(pgrep -g "$1" 2>/dev/null) || return 1
  # shellcheck disable=SC2086
  ps -L -o stat= -p $pids 2>/dev/null | grep -qv '^Z'
}
for name in webserver daemon; do
  pidfile="$DAGSTER_HOME/$name.pid"
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if group_alive "$pid"; then
    # The process leads its own group (setsid in up.sh): the signal reaches its children too. Wait
    # for the whole group, not the leader alone: the code servers the webserver and the daemon
    # spawn (`dagster api grpc`, ~300 MB each) outlive them until their heartbeat times out.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 $((GRACE * 2))); do
      group_alive "$pid" || break; sleep 0.5
    done
    if group_alive "$pid"; then
      echo "down: Dagster $name (process group $pid) still ran ${GRACE} s after SIGTERM; sending SIGKILL" >&2
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
      # SIGKILL is delivered, not done: a loaded machine shows the processes a moment longer, and
      # `make up` right after must not find their ports still held.
      for _ in $(seq 1 20); do
        group_alive "$pid" || break; sleep 0.5
      done
      if group_alive "$pid"; then
        echo "down: Dagster $name (process group $pid) still ran 10 s after SIGKILL" >&2
      fi
    fi
    echo "stopped Dagster $name (pid $pid)"
  fi
  rm -f "$pidfile"
done
if [ "${1:-}" != "--dagster-only" ]; then
  .venv/bin/data-engine labelstudio down || true
fi
