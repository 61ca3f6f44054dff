# Cross-compiles for aarch64 Linux with Debian's cross toolchain (g++-aarch64-linux-gnu).
# Tests and test discovery run under qemu-user with Debian's arm64 runtime installed through
# multiarch (libc6:arm64, libstdc++6:arm64, zlib1g:arm64), not the cross sysroot: under
# qemu-user 7.2 with `-L /usr/aarch64-linux-gnu`, a dynamically linked pthread_create spins
# forever (a plain std::thread program reproduces it; the multiarch loader does not).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
