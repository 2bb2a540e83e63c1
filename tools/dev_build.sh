#!/usr/bin/env bash
# In-tree development build: compiles _core into python/tensorops/ so that
#   PYTHONPATH=python python -m pytest
# runs against the working tree without reinstalling. Extra arguments go to CMake's
# configure step (e.g. -DTENSOROPS_BUILD_BENCH=ON or -DTENSOROPS_SANITIZE=ON).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${TENSOROPS_BUILD_DIR:-$root/build/dev}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" \
  -DTENSOROPS_DEV_OUTPUT_DIR="$root/python/tensorops" "$@" >/dev/null
cmake --build "$build"
