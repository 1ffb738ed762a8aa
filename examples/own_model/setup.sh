#!/bin/sh
# Create the example trainer's own virtual environment in examples/own_model/.venv.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python3 -m venv "$here/.venv"
"$here/.venv/bin/pip" install "scikit-learn==1.9.1" "pandas==3.1.1" "pyarrow==26.0.1" "joblib==1.6.0" "dagster-pipes==1.13.27"
echo "trainer ready: command = [\"$here/.venv/bin/python\", \"$here/train.py\"]"
