#!/usr/bin/env bash
# Compiles and links _core for a non-x86 target with a cross compiler, the way CMake builds it
# on such a machine: every csrc/<family>/*.cc except the x86_* kernel files, the generic ones
# with the generic ISA's defines, and the bindings. The link must leave no tensorops symbol
# undefined (Python's are, as in any extension module). Nothing runs; this checks that the
# package still builds where only the generic kernels exist.
#   tools/cross_compile_check.sh [c++ compiler]   (default: aarch64-linux-gnu-g++;
#                                                  Debian/Ubuntu package g++-aarch64-linux-gnu)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cxx="${1:-aarch64-linux-gnu-g++}"
python="${PYTHON:-python}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

python_include="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
pybind11_include="$("$python" -c 'import pybind11; print(pybind11.get_include())')"
common=(-std=c++17 -O2 -fPIC -fopenmp -Wall -Wextra -Wno-unused-parameter -I"$root/csrc" -DTENSOROPS_X86=0)

compile() {
  local src="$1" obj="$out/$(echo "${1#"$root"/}" | tr / _).o" defs=()
  case "$(basename "$src" .cc)" in
    x86_*) return 0 ;;
    generic) defs=(-DTENSOROPS_ISA_NS=generic -DTENSOROPS_ISA_ID=0) ;;
  esac
  [ "$(basename "$src")" = module.cc ] && defs=(-I"$python_include" -I"$pybind11_include")
  "$cxx" "${common[@]}" "${defs[@]}" -c "$src" -o "$obj"
}
sources=("$root"/csrc/*/*.cc "$root"/csrc/module.cc)
jobs="$(nproc 2>/dev/null || echo 2)"
failed=0
pids=()
for src in "${sources[@]}"; do
  compile "$src" &
  pids+=($!)
  if [ "${#pids[@]}" -ge "$jobs" ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
  fi
done
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
[ "$failed" = 0 ] || { echo "cross compile with $cxx failed"; exit 1; }

"$cxx" -shared -fopenmp -o "$out/_core.so" "$out"/*.o
undefined="$(nm -uC "$out/_core.so" | grep -i 'tensorops' || true)"
if [ -n "$undefined" ]; then
  echo "undefined tensorops symbols in the $cxx build:"
  echo "$undefined"
  exit 1
fi
echo "$cxx: $(ls "$out"/*.o | wc -l) objects compiled and linked; $(file -b "$out/_core.so" | cut -d, -f1-2)"
