"""Loads the OpenBLAS the simulator links against before the extension module."""
import ctypes
import os


def preload_blas():
    try:
        import scipy_openblas32 as sob
    except ImportError:  # built against a system BLAS
        return
    path = os.path.join(sob.get_lib_dir(), sob.get_library(fullname=True))
    ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)


preload_blas()
