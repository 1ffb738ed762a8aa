#!/bin/sh
# Create the example trainer's own virtual environment (default examples/own_model/.venv, or the
# folder given as the first argument) and print the `command` line for engine.toml.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${1:-$here/.venv}
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "scikit-learn==1.9.1" "pandas==3.1.1" "pyarrow==26.0.1" "joblib==1.6.0" "pillow==13.0.0" \
    "dagster-pipes==1.13.27"
echo "trainer ready: command = [\"$venv/bin/python\", \"$here/train.py\"]"
