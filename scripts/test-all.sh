#!/usr/bin/env bash
# Sets up .venv with the test dependencies, then runs every test: C++ (GoogleTest via
# ctest) and Python (pytest). Exits non-zero when any test fails.
set -euo pipefail
if ! dpkg -s libgtest-dev >/dev/null 2>&1 && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libgtest-dev >/dev/null
fi
source "$(dirname "$0")/env.sh" test
cmake -S . -B build/cpp -G Ninja -DANEFORGE_BUILD_TESTS=ON -DPython_EXECUTABLE="$(command -v python)" >/dev/null
cmake --build build/cpp
ctest --test-dir build/cpp --output-on-failure
python -m pytest -q "$@"
