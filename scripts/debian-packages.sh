#!/usr/bin/env bash
# Installs the Debian packages the tests need when any is missing (root, or sudo):
# GoogleTest's sources; clang with its runtimes (fuzzing) and libc++ (Apple's C++ library, for
# the toolchain check); the aarch64 cross compiler, qemu-user and, through multiarch, the
# arm64 runtime the cross-built tests load under qemu. apt's output goes to build/logs/apt.log.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$ROOT/build/logs"
PACKAGES=(libgtest-dev clang libclang-rt-14-dev libc++-14-dev libc++abi-14-dev
          g++-aarch64-linux-gnu qemu-user libc6:arm64 libstdc++6:arm64 zlib1g:arm64)
need=()
for pkg in "${PACKAGES[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "missing Debian packages: ${need[*]} (and no apt-get here)"; exit 1
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
echo "installing Debian packages: ${need[*]}"
{
  dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
} > "$ROOT/build/logs/apt.log" 2>&1 || { tail -20 "$ROOT/build/logs/apt.log"; exit 1; }
