#!/usr/bin/env bash
# The project built the way its users' machines build it, beside the main GCC build:
#   libcxx   clang + libc++ (Apple's toolchain is clang with libc++): core, Python module and
#            C++ tests with -Werror; the C++ tests run, and the quickstart runs on the libc++
#            Python module.
#   aarch64  core and C++ tests cross-compiled for arm64 Linux (Debian's cross toolchain)
#            against the scipy-openblas32 wheel for aarch64, run under qemu-user: the NEON fp16
#            path must reproduce the conversions recorded on x86-64 bit for bit.
# Usage: scripts/toolchains.sh [libcxx] [aarch64] (both by default). Needs the Debian packages
# scripts/debian-packages.sh installs and the .venv of scripts/env.sh. Build logs go to
# build/logs/<name>.log; exits non-zero when a build or a test fails.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
. "$VENV/bin/activate"
mkdir -p build/logs

build() {  # name, cmake arguments...
  local name="$1"; shift
  if ! { cmake -S . -B "build/$name" -G Ninja -DANEFORGE_BUILD_TESTS=ON -DANEFORGE_WERROR=ON \
           -DANEFORGE_GTEST_SOURCE=/usr/src/googletest "$@" && cmake --build "build/$name"; } \
         > "build/logs/$name.log" 2>&1; then
    echo "toolchains: the $name build failed (build/logs/$name.log):"
    grep -E "error|Error" "build/logs/$name.log" | head -20
    return 1
  fi
}

run_tests() {  # name
  ctest -j2 --test-dir "build/$1" --output-on-failure > "build/logs/$1-ctest.log" 2>&1 ||
    { tail -40 "build/logs/$1-ctest.log"; return 1; }
  grep -E "tests passed|Total Test time|(Skipped)" "build/logs/$1-ctest.log" | sed "s/^/$1: /"
}

libcxx() {
  CC=clang CXX=clang++ CXXFLAGS="-stdlib=libc++" LDFLAGS="-stdlib=libc++" \
    build libcxx -DANEFORGE_BUILD_PYTHON=ON -DPython_EXECUTABLE="$(command -v python)" || return 1
  run_tests libcxx || return 1
  # The libc++ extension module in a copy of the package, then the quickstart on it.
  local stage="build/libcxx/python"
  rm -rf "$stage" && mkdir -p "$stage" && cp -r python/aneforge "$stage/" &&
    cp build/libcxx/_core*.so "$stage/aneforge/" || return 1
  local sob
  sob="$(python -c 'import scipy_openblas32 as s; print(s.get_lib_dir())')" || return 1
  PYTHONPATH="$ROOT/$stage" LD_LIBRARY_PATH="$sob" python - <<'EOF' > build/logs/libcxx-python.log 2>&1 ||
import runpy, aneforge
assert "/build/libcxx/" in aneforge._core.__file__, aneforge._core.__file__
runpy.run_path("examples/quickstart.py", run_name="__main__")
EOF
    { cat build/logs/libcxx-python.log; return 1; }
  echo "libcxx: examples/quickstart.py ran on the libc++ module: $(grep cosine build/logs/libcxx-python.log)"
}

aarch64() {
  # The aarch64 wheel of scipy-openblas32 (what pip gives an arm64 Linux user), unpacked.
  local deps="build/aarch64-deps"
  if [ ! -d "$deps/scipy_openblas32/lib" ]; then
    rm -rf "$deps" && mkdir -p "$deps"
    python -m pip download -q --no-deps --only-binary=:all: --platform manylinux2014_aarch64 \
      "scipy-openblas32>=0.3.27" -d "$deps" > build/logs/aarch64-deps.log 2>&1 ||
      { cat build/logs/aarch64-deps.log; return 1; }
    python -m zipfile -e "$deps"/scipy_openblas32-*.whl "$deps" || return 1
  fi
  build aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64-linux-gnu.cmake \
    -DANEFORGE_BLAS=scipy-openblas -DANEFORGE_SCIPY_OPENBLAS_DIR="$ROOT/$deps/scipy_openblas32" || return 1
  run_tests aarch64
}

# Each step says `|| return 1` itself: errexit does not apply inside a function called with ||.
status=0
for what in "${@:-libcxx aarch64}"; do
  for w in $what; do
    case "$w" in
      libcxx) libcxx || status=1 ;;
      aarch64) aarch64 || status=1 ;;
      *) echo "toolchains: unknown '$w' (libcxx, aarch64)"; exit 2 ;;
    esac
  done
done
exit $status
