#!/usr/bin/env bash
# Idempotent set-up from pinned locks:
#   .venv     the engine (requirements.lock, then this project in editable mode)
#   .venv-ls  the Label Studio server, a service with its own dependencies (requirements-labelstudio.lock)
# A venv is rebuilt only when its lock (or pyproject.toml) changed, so a re-run takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "setup: Python 3.11+ is needed (found $("$PY" --version 2>&1)); set PYTHON=..." >&2; exit 1; }

digest() { cat "$@" | sha256sum | cut -c1-16; }

build_venv() {  # dir, lock: rebuilt only when the lock changed
  local dir=$1 lock=$2
  local want; want=$(digest "$lock")
  if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$want" ] && [ -x "$dir/bin/python" ]; then
    return 0
  fi
  echo "setup: building $dir from $lock (a few minutes the first time)"
  rm -rf "$dir"
  "$PY" -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check -r "$lock" >"$dir.log" 2>&1 \
    || { echo "setup: pip install into $dir failed; see $dir.log" >&2; tail -20 "$dir.log" >&2; return 1; }
  echo "$want" > "$dir/.stamp"
}

install_engine() {  # the engine itself, editable; re-done (seconds) when pyproject.toml changed
  local want; want=$(digest pyproject.toml)
  if [ -f .venv/.stamp-engine ] && [ "$(cat .venv/.stamp-engine)" = "$want" ] && [ -x .venv/bin/data-engine ]; then
    return 0
  fi
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -e . >>.venv.log 2>&1 \
    || { echo "setup: installing the engine failed; see .venv.log" >&2; tail -20 .venv.log >&2; return 1; }
  echo "$want" > .venv/.stamp-engine
}

# The two venvs are independent: build them side by side.
(build_venv .venv requirements.lock && install_engine) & app=$!
build_venv .venv-ls requirements-labelstudio.lock & ls=$!
status=0
wait $app || status=1
wait $ls || status=1
exit $status
