#!/usr/bin/env bash
# Installs numvault and the numvault command (two wheels, built from source)
# into .venv and runs the demo: a side-by-side of numvault and NumPy .npy on
# generated data (1M x 10 float32), then the numvault command's quick
# self-benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q .
# The numvault command: its own wheel (crates/numvault-cli). Installed after
# the package, never in the same pip call: pip installs numvault-cli first,
# and upgrading a numvault from before the split (which had a `numvault`
# console script) would then delete the binary it just installed.
.venv/bin/python -m pip install -q ./crates/numvault-cli
.venv/bin/python examples/demo.py "$@"
# The numvault command (the numvault-cli wheel): a quick self-benchmark.
.venv/bin/numvault bench --rows 200000 --repeats 5
