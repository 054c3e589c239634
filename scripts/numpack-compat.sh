#!/usr/bin/env bash
# NumPack 0.7.0's own test suite, run against numvault.NumPack.
#
# Fetches NumPack 0.7.0's sdist from PyPI (the file itself, pinned by its
# sha256; cached in ~/.cache/numvault), copies its python/numpack/tests into
# a temporary directory and runs them with `-m 'not benchmark'` against
# numvault through the shim package `numpack` (scripts/numpack_shim), placed
# first on the path. NumPack's tests are never copied into this repository.
# The tests deselected, each with its rule, are listed in
# scripts/numpack_compat_exclusions.txt.
#
# Usage: bash scripts/numpack-compat.sh [extra pytest args]
# Needs the numvault package installed in the active Python (or .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [[ -z "${VIRTUAL_ENV:-}" && -f .venv/bin/activate ]]; then
    # shellcheck disable=SC1091
    source .venv/bin/activate
fi
URL=https://files.pythonhosted.org/packages/2e/52/6f614ccc79a62b028bdbd5fcf81bcf3ccf5f4456b08c65af10f9d57bd57a/numpack-0.7.0.tar.gz
SHA256=6e2be773d37ae209f82dc2997daaf5b1d00d9a9940b7a915d464dcd99b41d6eb
CACHE=${NUMVAULT_CACHE:-$HOME/.cache/numvault}
SDIST=$CACHE/numpack-0.7.0.tar.gz
mkdir -p "$CACHE"
python - "$URL" "$SDIST" "$SHA256" <<'PY'
import hashlib, os, sys, urllib.request
url, path, want = sys.argv[1:]
def digest(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()
if not (os.path.exists(path) and digest(path) == want):
    tmp = path + ".part"
    with urllib.request.urlopen(url, timeout=120) as r, open(tmp, "wb") as f:
        while True:
            b = r.read(1 << 20)
            if not b:
                break
            f.write(b)
    got = digest(tmp)
    if got != want:
        os.unlink(tmp)
        sys.exit(f"numpack-0.7.0.tar.gz: sha256 {got} is not the pinned {want}")
    os.replace(tmp, path)
PY
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
tar -xzf "$SDIST" -C "$WORK" numpack-0.7.0/python/numpack/tests
mv "$WORK/numpack-0.7.0/python/numpack/tests" "$WORK/tests"
DESELECT=()
while IFS= read -r line; do
    line=${line%%#*}
    line=$(echo "$line" | awk '{print $1}')
    [[ -z "$line" ]] && continue
    if [[ "$line" == *"::"* ]]; then
        DESELECT+=(--deselect "tests/$line")
    else
        DESELECT+=(--ignore "tests/$line")
    fi
done < "$ROOT/scripts/numpack_compat_exclusions.txt"
cd "$WORK"
PYTHONPATH="$ROOT/scripts/numpack_shim${PYTHONPATH:+:$PYTHONPATH}" \
    python -m pytest -q -m 'not benchmark' -p no:cacheprovider -W ignore::pytest.PytestUnknownMarkWarning \
    "${DESELECT[@]}" tests "$@"
