#!/usr/bin/env bash
# PyTorch integration tests (tests/torch): numvault.torch.ArrayDataset in
# DataLoader workers (fork and spawn) and torch.from_dlpack(LazyArray).
# PyTorch is not in the `test` extra (its wheels are gigabytes): this script
# installs it into .venv if it is missing (NUMVAULT_NO_TORCH_INSTALL=1 to
# skip that and fail instead), builds the extension and runs the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if ! "$PY" -c "import torch" 2>/dev/null; then
    if [ "${NUMVAULT_NO_TORCH_INSTALL:-0}" = 1 ]; then
        echo "PyTorch is not installed (pip install torch)" >&2
        exit 1
    fi
    "$PY" -m pip install -q torch
fi
if [ "${NUMVAULT_NO_BUILD:-0}" != 1 ]; then
    # maturin develop installs into the active virtualenv
    VIRTUAL_ENV="$(cd "$(dirname "$PY")/.." && pwd)" maturin develop --release -q
fi
exec "$PY" -m pytest -q tests/torch "$@"
