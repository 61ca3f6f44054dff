"""Every Python example runs and passes its own check against a float32 reference."""
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Training examples need a dataset; they are run below on tiny files in its format.
TRAINING = {"train_cifar10.py"}
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if p.name not in TRAINING)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path):
    r = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "cosine" in r.stdout


def _write_cifar_binary(directory, rng, n=70):
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows = np.concatenate([rng.integers(0, 10, (n, 1)), rng.integers(0, 256, (n, 3072))], axis=1).astype(np.uint8)
        (directory / f"{name}.bin").write_bytes(rows.tobytes())


def test_cifar10_example_says_where_the_data_goes_and_trains_on_cifar_files(tmp_path):
    script = str(ROOT / "examples" / "train_cifar10.py")
    r = subprocess.run([sys.executable, script, "--data", str(tmp_path / "missing")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1 and "Put the CIFAR-10 batches there" in r.stderr, r.stderr
    _write_cifar_binary(tmp_path, np.random.default_rng(0))
    r = subprocess.run([sys.executable, script, "--data", str(tmp_path), "--epochs", "1", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "test accuracy after 1 epochs" in r.stdout
    assert (tmp_path / "cifar10_training.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "cifar10.ckpt").exists()


# The science demos write what a person looks at; each checks its own result against an
# independent reference (float64 NumPy, the float32 program, an analytic orbit) and exits 1
# when it misses.
SCIENCE = {"navier_stokes.py": "navier_stokes.gif", "gray_scott.py": "gray_scott.png", "nbody.py": "nbody.png",
           "spectrogram.py": "spectrogram.png", "solver_error.py": "solver_error.png"}


def test_every_science_demo_is_listed():
    assert sorted(p.name for p in (ROOT / "examples" / "science").glob("*.py")) == sorted(SCIENCE)


@pytest.mark.parametrize("name", sorted(SCIENCE))
def test_science_demo_runs_checks_itself_and_writes_its_picture(name, tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "science" / name), "--small", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "check:" in r.stdout
    picture = (tmp_path / SCIENCE[name]).read_bytes()
    magic = b"GIF89a" if name == "navier_stokes.py" else b"\x89PNG\r\n"
    assert picture.startswith(magic)
    assert len(picture) > 2000
