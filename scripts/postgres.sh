#!/usr/bin/env bash
# PostgreSQL for the services of an engine home (Dagster's instance, Label Studio's database).
#
#   scripts/postgres.sh install   Debian's postgresql via apt-get when missing (as root)
#   scripts/postgres.sh up        install, initialise HOME/postgres on first use, start on 127.0.0.1
#   scripts/postgres.sh down      stop this home's server
#   scripts/postgres.sh status    running or not
#   scripts/postgres.sh env       `export ...` lines for Dagster's dagster.yaml (see DAGSTER_YAML)
#   source scripts/postgres.sh hook   what scripts/up.sh runs: with DATA_ENGINE_SERVICES_DB=postgres
#                                 (or a home already on PostgreSQL) start it and point Dagster at it
#
# The cluster lives in $DATA_ENGINE_HOME/postgres/data, listens on 127.0.0.1 only (port
# $DATA_ENGINE_PG_PORT, default 5433, remembered in the home), and its password is the 0600 file
# HOME/secrets/postgres_password (generated here, never printed except by `env` for Dagster's
# process environment). Label Studio finds the same facts in HOME/postgres/connection.json (no
# secrets) and the password file. initdb and postgres refuse to run as root: as root every server
# command runs as the `postgres` user (runuser), which owns HOME/postgres.

_pg_main() {
  set -euo pipefail
  local repo; repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  HOME_DIR=${DATA_ENGINE_HOME:-$repo/.data-engine}
  PGROOT=$HOME_DIR/postgres
  PGDATA_DIR=$PGROOT/data
  SECRET=$HOME_DIR/secrets/postgres_password
  PGPASS=$HOME_DIR/secrets/pgpass
  PG_USER=engine
  DATABASES="dagster labelstudio"
  case "${1:-}" in
    install) _pg_install ;;
    up) _pg_up ;;
    down) _pg_down ;;
    status) _pg_status ;;
    env) _pg_env ;;
    *) echo "usage: scripts/postgres.sh install|up|down|status|env" >&2; return 2 ;;
  esac
}

_pg_bin() {  # the newest installed server's bin dir (Debian keeps initdb off PATH)
  local d; d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

_pg_install() {
  if _pg_bin >/dev/null; then return 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "postgres: PostgreSQL is not installed; run as root or: sudo apt-get install postgresql" >&2
    return 1
  fi
  echo "postgres: installing Debian's postgresql (apt-get)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
  _pg_bin >/dev/null || { echo "postgres: apt-get installed no initdb" >&2; return 1; }
}

_as_pg() {  # run a server command as the postgres user when we are root
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

_pg_port() {
  if [ -n "${DATA_ENGINE_PG_PORT:-}" ]; then echo "$DATA_ENGINE_PG_PORT"
  elif [ -f "$PGROOT/port" ]; then cat "$PGROOT/port"
  else echo 5433; fi
}

_pg_running() { [ -f "$PGDATA_DIR/postmaster.pid" ] && _as_pg "$(_pg_bin)/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; }

_pg_up() {
  _pg_install
  local bin port; bin=$(_pg_bin); port=$(_pg_port)
  mkdir -p "$HOME_DIR/secrets"; chmod 700 "$HOME_DIR/secrets"
  if [ ! -s "$SECRET" ]; then
    (umask 077; "${PYTHON:-python3}" -c 'import secrets; print(secrets.token_hex(20))' > "$SECRET")
  fi
  chmod 600 "$SECRET"
  mkdir -p "$PGROOT/run"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$PGROOT" "$PGROOT/run"
    runuser -u postgres -- test -x "$PGROOT" || {
      echo "postgres: the postgres user cannot reach $PGROOT; make its parent directories traversable (chmod o+x)" >&2
      return 1; }
  fi
  chmod 700 "$PGROOT"
  if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
    # The password reaches initdb through a file only the server's user can read, removed at once.
    local pw="$PGROOT/.pwfile"
    (umask 077; cp "$SECRET" "$pw")
    [ "$(id -u)" -eq 0 ] && chown postgres: "$pw"
    _as_pg "$bin/initdb" -D "$PGDATA_DIR" -U "$PG_USER" --pwfile="$pw" --auth=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$PGROOT/initdb.log" 2>&1 \
      || { rm -f "$pw"; echo "postgres: initdb failed; see $PGROOT/initdb.log" >&2; return 1; }
    rm -f "$pw"
  fi
  echo "$port" > "$PGROOT/port"
  (umask 077; echo "127.0.0.1:$port:*:$PG_USER:$(cat "$SECRET")" > "$PGPASS")
  if ! _pg_running; then
    _as_pg "$bin/pg_ctl" -D "$PGDATA_DIR" -l "$PGROOT/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $PGROOT/run" start >/dev/null \
      || { echo "postgres: the server did not start; see $PGROOT/server.log" >&2; return 1; }
  fi
  local db
  for db in $DATABASES; do
    PGPASSFILE=$PGPASS "$bin/psql" -h 127.0.0.1 -p "$port" -U "$PG_USER" -d postgres -tAq -v ON_ERROR_STOP=1 \
      -c "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 \
      || PGPASSFILE=$PGPASS "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$PG_USER" "$db"
  done
  printf '{"host": "127.0.0.1", "port": %s, "user": "%s", "dagster_db": "dagster", "labelstudio_db": "labelstudio"}\n' \
    "$port" "$PG_USER" > "$PGROOT/connection.json"
  echo "postgres: 127.0.0.1:$port (databases: $DATABASES; data in $PGDATA_DIR)" >&2
}

_pg_down() {
  local bin; bin=$(_pg_bin) || return 0
  if _pg_running; then _as_pg "$bin/pg_ctl" -D "$PGDATA_DIR" -w -t 30 -m fast stop >/dev/null; echo "postgres: stopped" >&2; fi
}

_pg_status() {
  if _pg_running; then echo "running on 127.0.0.1:$(_pg_port) ($PGDATA_DIR)"; else echo "not running"; return 1; fi
}

_pg_env() {  # for Dagster's dagster.yaml, which reads its PostgreSQL settings from the environment
  [ -s "$SECRET" ] || { echo "postgres: no $SECRET; run scripts/postgres.sh up" >&2; return 1; }
  echo "export DAGSTER_PG_HOST=127.0.0.1 DAGSTER_PG_PORT=$(_pg_port) DAGSTER_PG_USER=$PG_USER DAGSTER_PG_DB=dagster"
  echo "export DAGSTER_PG_PASSWORD=$(cat "$SECRET")"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  _pg_main "$@"
elif [ "${1:-}" = hook ]; then
  # Sourced by scripts/up.sh after it wrote $DAGSTER_HOME/dagster.yaml.
  case "${DATA_ENGINE_SERVICES_DB:-sqlite}" in
    sqlite|postgres) ;;
    *) echo "postgres: DATA_ENGINE_SERVICES_DB=${DATA_ENGINE_SERVICES_DB}: must be sqlite or postgres" >&2; exit 2 ;;
  esac
  if [ "${DATA_ENGINE_SERVICES_DB:-}" = postgres ] || [ -f "${DATA_ENGINE_HOME:?}/postgres/connection.json" ]; then
    _pg_main up
    eval "$(_pg_main env)"
    cat "$(dirname "${BASH_SOURCE[0]}")/dagster-postgres.yaml" >> "$DAGSTER_HOME/dagster.yaml"
  fi
fi
