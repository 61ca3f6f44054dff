"""Loads the OpenBLAS the simulator links against before the extension module.

Off macOS the extension links the scipy-openblas32 wheel's library (found through its RPATH
too; loading it here first also serves builds whose layout differs). On macOS it links
Accelerate, a system framework, unless built with ANEFORGE_BLAS=scipy-openblas, where the
RPATH @loader_path/../scipy_openblas32/lib finds the wheel's library.

OpenBLAS's idle threads spin for 2^28 cycles after each call before they sleep
(OPENBLAS_THREAD_TIMEOUT, log2 of the cycles, 4..30: OpenMathLib/OpenBLAS issue 5171). The
simulator runs its own thread pool between BLAS calls, and on a small machine those spinning
threads took its cores: MobileNetV2 ran 35% slower. The variable is set to the shortest spin
(4) unless the user set it, before the library loads (importing scipy_openblas32 loads it),
and stays set. Other OpenBLAS copies loaded later, and child processes, see it too (set
OPENBLAS_THREAD_TIMEOUT yourself to choose otherwise)."""
import ctypes
import os
import sys


def preload_blas():
    if sys.platform == "darwin":
        return
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # before the import: it loads the library
    try:
        import scipy_openblas32 as sob
    except ImportError:  # built against a system BLAS
        return
    path = os.path.join(sob.get_lib_dir(), sob.get_library(fullname=True))
    ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)


preload_blas()
