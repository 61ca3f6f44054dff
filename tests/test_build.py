"""The build: BLAS choice per platform, file names that are not Linux-only, the sdist, the wheel
configuration and its workflow."""
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile

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


def _configure(tmp_path, *args, env=None):
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake is not on PATH")
    return subprocess.run([cmake, "-S", str(ROOT), "-B", str(tmp_path / "b"), *args],
                          capture_output=True, text=True, timeout=300, env=env)


def test_scipy_openblas_is_found_by_the_file_name_its_wheel_reports(tmp_path):
    """macOS wheels ship libscipy_openblas.dylib: the build asks the wheel for its file name."""
    fake = tmp_path / "fake" / "scipy_openblas32"
    (fake / "lib").mkdir(parents=True)
    (fake / "include").mkdir()
    (fake / "lib" / "libscipy_openblas.dylib").write_bytes(b"")
    (fake / "__init__.py").write_text(
        "import os\n_here = os.path.dirname(__file__)\n"
        "def get_include_dir(): return os.path.join(_here, 'include')\n"
        "def get_lib_dir(): return os.path.join(_here, 'lib')\n"
        "def get_library(fullname=False):\n"
        "    return 'libscipy_openblas.dylib' if fullname else 'scipy_openblas'\n")
    env = dict(os.environ, PYTHONPATH=str(fake.parent))
    r = _configure(tmp_path, "-DANEFORGE_BLAS=scipy-openblas", f"-DPython_EXECUTABLE={sys.executable}", env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"BLAS = scipy-openblas32 ({fake}/lib/libscipy_openblas.dylib)" in r.stdout


def test_accelerate_where_there_is_none_says_what_is_missing(tmp_path):
    if sys.platform == "darwin":
        pytest.skip("Accelerate is there on macOS")
    r = _configure(tmp_path, "-DANEFORGE_BLAS=accelerate")
    assert r.returncode != 0
    assert "the Accelerate framework was not found" in " ".join(r.stderr.split())


def test_an_unknown_blas_choice_is_refused(tmp_path):
    r = _configure(tmp_path, "-DANEFORGE_BLAS=mkl")
    assert r.returncode != 0
    assert "expected auto, accelerate, scipy-openblas or system" in " ".join(r.stderr.split())


def test_no_build_file_assumes_linux_library_names():
    files = [ROOT / "CMakeLists.txt", *sorted((ROOT / "cmake").glob("*.cmake"))]
    for f in files:
        for n, line in enumerate(f.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            assert not re.search(r"\.so\b|\$ORIGIN", code) or "APPLE" in code or "_af_origin" in code, \
                f"{f.name}:{n} names a Linux-only library file or RPATH: {line.strip()}"


def test_the_sdist_holds_a_buildable_tree(tmp_path):
    """The sdist (what pip builds on a Mac with only the command-line tools) has the whole C++
    tree and configures on its own."""
    pytest.importorskip("build")
    r = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "-o", str(tmp_path), str(ROOT)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (sdist,) = tmp_path.glob("aneforge-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        tar.extractall(tmp_path / "src", filter="data")
    for needed in ("CMakeLists.txt", "pyproject.toml", "cmake/blas.cmake", "cpp/src/runtime/fp16.cpp",
                   "cpp/include/aneforge/aneforge.h", "python/src/bindings.cpp", "python/aneforge/__init__.py",
                   "python/stubgen/stubgen.cpp", "python/aneforge/__init__.pyi.in"):
        assert needed in names, needed
    assert not any(n.startswith(("build/", ".venv/")) for n in names)
    (src,) = (tmp_path / "src").iterdir()
    r = subprocess.run([shutil.which("cmake"), "-S", str(src), "-B", str(tmp_path / "b"),
                        f"-DPython_EXECUTABLE={sys.executable}", "-DANEFORGE_BUILD_PYTHON=ON"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def test_wheels_are_configured_for_macos_arm64_and_linux():
    pytest.importorskip("cibuildwheel")
    ids = {}
    for platform in ("macos", "linux"):
        r = subprocess.run([sys.executable, "-m", "cibuildwheel", "--print-build-identifiers", "--platform", platform], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        ids[platform] = set(r.stdout.split())
    assert ids["macos"] == {f"cp3{v}-macosx_arm64" for v in (10, 11, 12, 13)}
    assert ids["linux"] == {f"cp3{v}-manylinux_{a}" for v in (10, 11, 12, 13) for a in ("x86_64", "aarch64")}
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["tool"]["cibuildwheel"]["macos"]["environment"]["MACOSX_DEPLOYMENT_TARGET"] == "14.0"
    # macOS takes Accelerate, so scipy-openblas32 is neither built against nor installed there.
    for req in config["build-system"]["requires"] + config["project"]["dependencies"]:
        if req.startswith("scipy-openblas32"):
            assert "sys_platform != 'darwin'" in req


def test_the_wheel_workflow_runs_scripts_that_exist():
    yaml = pytest.importorskip("yaml")
    flow = yaml.safe_load((ROOT / ".github/workflows/wheels.yml").read_text())
    runs = [step.get("run", "") for job in flow["jobs"].values() for step in job["steps"]]
    assert any("scripts/verify-mac.sh" in r for r in runs)
    for r in runs:
        for script in re.findall(r"scripts/[\w.-]+", r):
            assert (ROOT / script).exists(), script
    assert flow["jobs"]["mac-tests"]["runs-on"].startswith("macos-")
