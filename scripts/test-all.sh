#!/usr/bin/env bash
# Sets up .venv with the test dependencies, then runs every test: the C++ tests (GoogleTest
# via ctest), the same built with clang + libc++ and cross-built for aarch64 (run under
# qemu), the C++ tests under ASan+UBSan and TSan with warnings as errors, a short fuzz run of
# every file reader, and the Python tests (pytest, last). Compiler output goes to
# build/logs/; ends with a summary of the steps; exits non-zero when anything fails.
# FUZZ_SECONDS (default 60) per fuzz target; arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/logs
SUMMARY=()
CURRENT=""
STARTED=0
step() {  # closes the previous step, opens the next
  [ -n "$CURRENT" ] && SUMMARY+=("$(printf '  ok      %4ss  %s' $((SECONDS - STARTED)) "$CURRENT")")
  CURRENT="$*"; STARTED=$SECONDS
  printf '\n== %s\n' "$*"
}
finish() {
  local rc=$?
  if [ -n "$CURRENT" ]; then
    if [ "$rc" = 0 ]; then SUMMARY+=("$(printf '  ok      %4ss  %s' $((SECONDS - STARTED)) "$CURRENT")")
    else SUMMARY+=("$(printf '  FAILED  %4ss  %s' $((SECONDS - STARTED)) "$CURRENT")"); fi
  fi
  printf '\n== summary (%ss, logs in build/logs/)\n' "$SECONDS"
  printf '%s\n' "${SUMMARY[@]}"
  [ "$rc" = 0 ] && echo "all tests passed" || echo "FAILED"
}
trap finish EXIT
step "Debian packages (scripts/debian-packages.sh)"
bash scripts/debian-packages.sh
step "Python environment and package with the test dependencies"
source "$(dirname "$0")/env.sh" test
step "C++ tests (ctest; compiled with the package, in $AF_TEST_BUILD)"
ctest -j2 --test-dir "$AF_TEST_BUILD" --output-on-failure > build/logs/ctest.log 2>&1 || { cat build/logs/ctest.log | tail -40; exit 1; }
tail -3 build/logs/ctest.log
step "clang + libc++ (Apple's toolchain) and aarch64 under qemu, warnings as errors"
bash scripts/toolchains.sh
step "C++ tests under ASan+UBSan and TSan, warnings as errors"
bash scripts/sanitize.sh
step "fuzzing, ${FUZZ_SECONDS:-60} s per target (build/fuzz-logs/)"
FUZZ_SECONDS="${FUZZ_SECONDS:-60}" bash scripts/fuzz.sh
step "Python tests (pytest)"
python -m pytest -q "$@"
