#!/usr/bin/env bash
# Installs what the tests need (a virtualenv with the package and the
# numvault command, both built from source, pytest, hypothesis) and runs
# every test suite: the Rust engine's unit, property, crash, corruption and
# multi-process tests, the command's and the NumPack reader's unit tests, a
# short fuzz run, pytest (including the command's integration tests), then
# NumPack 0.7.0's own test suite against numvault.NumPack.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q '.[test]'
# The numvault command: its own wheel (crates/numvault-cli). Installed after
# the package, never in the same pip call: pip installs numvault-cli first,
# and upgrading a numvault from before the split (which had a `numvault`
# console script) would then delete the binary it just installed.
.venv/bin/python -m pip install -q ./crates/numvault-cli
cargo test -p numvault --release
# The same engine in a debug build, where invariants are asserted on both
# sides of the disk (states before a write and after a read, records and
# MANIFESTs decoded back as written): the suites that build varied states.
cargo test -p numvault --lib --test model --test txn --test limits \
  --test backward_compat --test multiwriter --test bad_input --test versions \
  --test backward_compat_v2
# The numvault command's unit tests (file formats, parsing); its integration
# tests run the installed command from pytest (tests/python/test_cli.py).
cargo test -p numvault-cli --release
# The .npy/.npz/CSV readers and writers shared by the command and numvault.io.
cargo test -p numvault-formats --release
# The NumPack store reader (numvault import of NumPack 0.5-0.7 directories).
cargo test -p numpack-reader --release
# Fuzz every libFuzzer target briefly (docs/RELIABILITY.md); 0 skips it.
FUZZ_SECS=${NUMVAULT_FUZZ_SECS:-30}
[ "$FUZZ_SECS" = 0 ] || bash scripts/fuzz.sh "$FUZZ_SECS"
.venv/bin/python -m pytest tests/python -q
# NumPack 0.7.0's own test suite against numvault.NumPack (its sdist is
# fetched from PyPI, pinned by sha256; exclusions in
# scripts/numpack_compat_exclusions.txt). NUMVAULT_NUMPACK_COMPAT=0 skips it.
[ "${NUMVAULT_NUMPACK_COMPAT:-1}" = 0 ] || bash scripts/numpack-compat.sh
