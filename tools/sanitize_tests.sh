#!/usr/bin/env bash
# The test suite under AddressSanitizer + UndefinedBehaviorSanitizer, in one line:
#   tools/sanitize_tests.sh [pytest args]      (default: the whole suite, tests/)
#
# Builds _core with -DTENSOROPS_SANITIZE=ON in build/asan/cmake (never touching the in-tree
# python/tensorops/_core*.so of tools/dev_build.sh), lays out build/asan/python/tensorops as
# symlinks to the working tree's Python files plus the instrumented _core, and runs pytest
# against it with libasan preloaded (the interpreter itself is not instrumented, so the ASan
# runtime must come first in the link order).
#
# detect_leaks=0: CPython keeps interned objects and arenas until exit by design, so leak
# reports would be noise. allocator_may_return_null=1: an impossible allocation (tests ask
# NumPy for exabytes to check the MemoryError) returns NULL, as glibc's malloc does, instead of
# aborting the process. Nothing else is needed: torch 2.13's CPU wheel, imported by the tests
# beside tensorops, runs clean under ASan with the defaults (odr checks included).
# UBSan stops at the first finding (the build also passes -fno-sanitize-recover=undefined).
# Extra ASAN_OPTIONS / UBSAN_OPTIONS from the environment are appended.
# TENSOROPS_SANITIZE_SKIP_BUILD=1 reuses the last build.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
asan="$root/build/asan"
pkg="$asan/python/tensorops"

if [[ "${TENSOROPS_SANITIZE_SKIP_BUILD:-0}" != 1 ]]; then
  mkdir -p "$pkg"
  TENSOROPS_BUILD_DIR="$asan/cmake" "$root/tools/dev_build.sh" \
    -DTENSOROPS_SANITIZE=ON -DTENSOROPS_DEV_OUTPUT_DIR="$pkg"
fi

# Python sources are linked, not copied, so edits show up without a rebuild; links to files
# that no longer exist are dropped.
find "$pkg" -maxdepth 1 -xtype l -delete
for entry in "$root"/python/tensorops/*; do
  name="$(basename "$entry")"
  case "$name" in _core*.so|__pycache__) continue ;; esac
  ln -sfn "$entry" "$pkg/$name"
done

libasan="$(gcc -print-file-name=libasan.so)"
libubsan="$(gcc -print-file-name=libubsan.so)"
cd "$root"
# Reports go to files as well as stderr: pytest captures each test's stderr at the file
# descriptor, so a report printed just before the sanitizer stops the process would be lost.
reports="$asan/reports"
rm -rf "$reports" && mkdir -p "$reports"
export LD_PRELOAD="$libasan $libubsan${LD_PRELOAD:+ $LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:log_path=$reports/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export PYTHONPATH="$asan/python${PYTHONPATH:+:$PYTHONPATH}"
export TENSOROPS_SANITIZED=1
status=0
python -m pytest -p no:cacheprovider "${@:-tests}" || status=$?
# (Files holding only allocator_may_return_null's warnings about refused allocations are not
# findings: the tests ask for those on purpose.)
findings="$(grep -l -e 'ERROR: ' -e 'runtime error' "$reports"/* 2>/dev/null || true)"
if [[ -n "$findings" ]]; then
  echo "sanitizer reports:" >&2
  cat $findings >&2
  status=1
fi
exit "$status"
