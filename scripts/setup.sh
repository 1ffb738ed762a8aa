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

build_venv() {  # dir, then the files whose content decides the venv
  local dir=$1; shift
  local want; want=$(digest "$@")
  if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$want" ] && [ -x "$dir/bin/python" ]; then
    return 0
  fi
  echo "setup: building $dir (pinned, a few minutes the first time)"
  rm -rf "$dir"
  "$PY" -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check -r "$1" >"$dir.log" 2>&1 \
    || { echo "setup: pip install into $dir failed; see $dir.log" >&2; tail -20 "$dir.log" >&2; return 1; }
  if [ "$dir" = ".venv" ]; then
    "$dir/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation -e . >>"$dir.log" 2>&1 \
      || { echo "setup: installing the engine failed; see $dir.log" >&2; tail -20 "$dir.log" >&2; return 1; }
  fi
  echo "$want" > "$dir/.stamp"
}

# The two venvs are independent: build them side by side.
build_venv .venv requirements.lock pyproject.toml & app=$!
build_venv .venv-ls requirements-labelstudio.lock & ls=$!
status=0
wait $app || status=1
wait $ls || status=1
exit $status
