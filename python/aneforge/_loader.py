"""Loads the OpenBLAS the simulator links against before the extension module.

Off macOS the extension links the scipy-openblas32 wheel's library (found through its RPATH
too; loading it here first also serves builds whose layout differs). On macOS it links
Accelerate, a system framework, unless built with ANEFORGE_BLAS=scipy-openblas, where the
RPATH @loader_path/../scipy_openblas32/lib finds the wheel's library."""
import ctypes
import os
import sys


def preload_blas():
    if sys.platform == "darwin":
        return
    try:
        import scipy_openblas32 as sob
    except ImportError:  # built against a system BLAS
        return
    path = os.path.join(sob.get_lib_dir(), sob.get_library(fullname=True))
    ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)


preload_blas()
