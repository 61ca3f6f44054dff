"""The OpenBLAS preload: the library's idle threads spin for the shortest time
(OPENBLAS_THREAD_TIMEOUT=4) unless the user chose a value, set before the library loads."""
import os
import subprocess
import sys

import pytest

from aneforge import _loader


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS links Accelerate: nothing is preloaded")
@pytest.mark.parametrize("user", [None, "12"])
def test_the_spin_is_set_before_the_blas_loads_and_a_users_value_is_kept(monkeypatch, user):
    pytest.importorskip("scipy_openblas32")
    seen = []
    monkeypatch.setattr(_loader.ctypes, "CDLL", lambda path, mode=0: seen.append(os.environ.get("OPENBLAS_THREAD_TIMEOUT")))
    if user is None:
        monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", user)
    _loader.preload_blas()
    assert seen == ["4" if user is None else user]


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS links Accelerate: nothing is preloaded")
def test_a_fresh_process_loads_the_blas_after_the_setting():
    # importing scipy_openblas32 loads the library: the setting must come first
    code = ("import os, sys, aneforge\n"
            "maps = open('/proc/self/maps').read()\n"
            "print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), 'scipy_openblas32' in maps)")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.stdout.split() == ["4", "True"], r.stderr
