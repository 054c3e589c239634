#!/usr/bin/env bash
# Installs numvault from source into .venv and runs the demo: a side-by-side
# of numvault and NumPy .npy on generated data (1M x 10 float32), then the
# numvault command's quick self-benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q .
.venv/bin/python examples/demo.py "$@"
# The numvault command, installed with the package: a quick self-benchmark.
.venv/bin/numvault bench --rows 200000 --repeats 5
