#!/usr/bin/env bash
# The ASan + UBSan build in build/asan, shared by scripts/sanitize.sh (every C++ test) and
# scripts/fuzz.sh (the libFuzzer target): clang, warnings as errors, the library compiled once
# with libFuzzer's coverage hooks so that both run from one build.
# Usage: scripts/asan-build.sh LOG [targets...] (all targets by default).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log="$1"; shift
if ! command -v clang++ >/dev/null; then
  echo "asan-build: clang++ not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
{ CC=clang CXX=clang++ cmake -S . -B build/asan -G Ninja -DANEFORGE_BUILD_TESTS=ON -DANEFORGE_BUILD_FUZZERS=ON \
    -DANEFORGE_WERROR=ON -DANEFORGE_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPython_EXECUTABLE="$(command -v python)" && cmake --build build/asan "${targets[@]}"; } > "$log" 2>&1
