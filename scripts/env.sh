# Shared setup: a virtualenv in $VENV (default .venv) with aneforge built and installed.
# Usage: source scripts/env.sh [extras]. Prints one line per step and the C++ build's
# progress; pip's full output goes to build/logs/pip.log.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
mkdir -p build/logs
LOG="$ROOT/build/logs/pip.log"
: > "$LOG"
af_step() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
if [ ! -x "$VENV/bin/python" ]; then
  af_step "creating the virtualenv $VENV"
  python3 -m venv "$VENV"
fi
. "$VENV/bin/activate"
af_step "installing the build tools (pip, scikit-build-core, nanobind, cmake, ninja, scipy-openblas32)"
python -m pip install -q --upgrade pip >> "$LOG" 2>&1
# Build requirements are installed into the venv so that rebuilds reuse build/ incrementally.
python -m pip install -q "scikit-build-core>=0.10" "nanobind>=2.4" "scipy-openblas32>=0.3.27" cmake ninja >> "$LOG" 2>&1 \
  || { tail -20 "$LOG"; return 1 2>/dev/null || exit 1; }
EXTRAS="${1:-}"
# With the test extras the same CMake build also compiles the C++ tests (ctest runs them in
# $AF_TEST_BUILD), so the core is compiled once for the package and its tests.
BUILD_ARGS=()
if [[ ",$EXTRAS," == *,test,* ]]; then
  export AF_TEST_BUILD="$ROOT/build/wheel-tests"
  BUILD_ARGS=(-C build-dir="$AF_TEST_BUILD" -C cmake.define.ANEFORGE_BUILD_TESTS=ON)
fi
af_step "building and installing aneforge${EXTRAS:+ with its [$EXTRAS] dependencies} (a first build compiles the C++ core${AF_TEST_BUILD:+ and its tests}, one to three minutes on 2 cores; log: build/logs/pip.log)"
# The build's [done/total] steps as one updating line.
set +o pipefail
python -m pip install -v --no-build-isolation "${BUILD_ARGS[@]}" ".${EXTRAS:+[$EXTRAS]}" 2>&1 | tee -a "$LOG" |
  grep --line-buffered -oE '^\[[0-9]+/[0-9]+\]' | while read -r p; do printf '\r  compiling %s' "$p"; done
status=${PIPESTATUS[0]}
set -o pipefail
printf '\r'
if [ "$status" != 0 ]; then
  echo "the build failed; the end of build/logs/pip.log:"; grep -E "error|Error" "$LOG" | tail -20
  return 1 2>/dev/null || exit 1
fi
af_step "aneforge $(python -c 'import aneforge; print(aneforge.__version__)') is installed in $VENV"
