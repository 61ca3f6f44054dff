#!/usr/bin/env bash
# Sets up .venv with the test dependencies, then runs every test: the C++ tests (GoogleTest
# via ctest), the C++ tests under ASan+UBSan and TSan with warnings as errors, a short fuzz
# run of every file reader, and the Python tests (pytest, last). Compiler output goes to
# build/logs/; exits non-zero when anything fails. FUZZ_SECONDS (default 60) per fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/logs
step() { printf '== %s\n' "$*"; }
need=()
for pkg in libgtest-dev clang libclang-rt-14-dev; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  step "installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" > build/logs/apt.log
fi
step "python environment and package (build log: build/logs/pip.log)"
source "$(dirname "$0")/env.sh" test > build/logs/pip.log 2>&1 || { tail -30 build/logs/pip.log; exit 1; }
step "C++ build (build/logs/cpp-build.log)"
{ cmake -S . -B build/cpp -G Ninja -DANEFORGE_BUILD_TESTS=ON -DPython_EXECUTABLE="$(command -v python)" &&
  cmake --build build/cpp; } > build/logs/cpp-build.log 2>&1 || { grep -E "error" build/logs/cpp-build.log | head -30; exit 1; }
step "C++ tests"
ctest --test-dir build/cpp --output-on-failure | tail -3
step "C++ tests under sanitizers (build/asan.log, build/tsan.log)"
bash scripts/sanitize.sh
step "fuzzing, ${FUZZ_SECONDS:-60} s per target (build/fuzz-logs/)"
FUZZ_SECONDS="${FUZZ_SECONDS:-60}" bash scripts/fuzz.sh
step "Python tests"
python -m pytest -q "$@"
