#!/usr/bin/env bash
# The C++ tests under sanitizers, warnings as errors, each process of ctest -j2 one test:
#   address,undefined  every C++ test (build/asan, clang: scripts/asan-build.sh, which
#                      scripts/fuzz.sh reuses)
#   thread             the threading tests (build/tsan): the thread pool, one executable
#                      from 8 threads, compiling from several threads, elementwise chains
#                      (blocks across the pool) at 1-3 threads, conv finishing pieces across the
#                      pool, the weight cache, convs as GEMM tasks across the pool
# Compiler logs go to build/<name>.log; exits non-zero when a build or a test fails.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
. "$VENV/bin/activate"
run() {  # build dir, sanitizer, ctest filter
  local dir="$1" san="$2" filter="$3"
  if [ "$dir" = asan ]; then
    built() { bash scripts/asan-build.sh "build/$dir.log"; }
  else
    built() { { cmake -S . -B "build/$dir" -G Ninja -DANEFORGE_BUILD_TESTS=ON -DANEFORGE_WERROR=ON -DANEFORGE_SANITIZE="$san" \
                  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPython_EXECUTABLE="$(command -v python)" &&
                cmake --build "build/$dir"; } > "build/$dir.log" 2>&1; }
  fi
  if ! built; then
    echo "sanitize: the $san build failed (build/$dir.log):"; grep -E "error" "build/$dir.log" | head -20; return 1
  fi
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    ctest -j2 --test-dir "build/$dir" -R "$filter" --output-on-failure 2>&1 | tail -4 | sed "s/^/sanitize $san: /"
  return "${PIPESTATUS[0]}"
}
mkdir -p build
status=0
run asan address,undefined "." || status=1
run tsan thread "Threads|Chains|FusedFinish|WeightCache|GemmFma" || status=1
exit $status
