"""The C++-only build explains how to get a BLAS when it finds none."""
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_cmake_without_a_blas_says_how_to_get_one(tmp_path):
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake is not on PATH")
    # Searching only under a root that does not exist hides every system BLAS.
    r = subprocess.run([cmake, "-S", str(ROOT), "-B", str(tmp_path / "b"), "-DANEFORGE_BLAS=system",
                        "-DCMAKE_FIND_ROOT_PATH=/nonexistent", "-DCMAKE_FIND_ROOT_PATH_MODE_LIBRARY=ONLY",
                        "-DCMAKE_FIND_ROOT_PATH_MODE_INCLUDE=ONLY"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    text = " ".join(r.stderr.split())
    assert "No BLAS found" in text
    assert "apt-get install libopenblas-dev" in text and "pip install scipy-openblas32" in text
