#!/usr/bin/env bash
# Run every cargo-fuzz (libFuzzer) target of fuzz/ for N seconds each
# (default 30). Installs cargo-fuzz if missing. Works on stable Rust:
# RUSTC_BOOTSTRAP=1 lets it accept the -Z flags cargo-fuzz passes.
# Seeds come from fuzz/seeds/<target> (small, in git); the grown corpus
# goes to fuzz/corpus/<target> (ignored). Prints one summary line per target
# with the number of executions; a crash fails the script and leaves the
# input in fuzz/artifacts/<target>.
#   bash scripts/fuzz.sh [seconds] [target...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECS=${1:-30}
shift || true
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || mapfile -t TARGETS < <(cargo fuzz list)
# Build every target once, before the timed runs.
cargo fuzz build -O
total=0
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  # -rss_limit_mb: any allocation a length read from disk could inflate
  # past the input size would trip it. -timeout: no hangs.
  if ! cargo fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$SECS" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
      -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $t FAILED" >&2
    exit 1
  fi
  execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo 0)
  total=$((total + execs))
  echo "fuzz $t: $execs executions in ${SECS}s, no crash, hang or over-allocation"
  rm -f "$log"
done
echo "fuzz total: $total executions over ${#TARGETS[@]} targets (${SECS}s each)"
